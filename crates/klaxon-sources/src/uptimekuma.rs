//! Uptime Kuma (`uptimekuma`, ingest.md §3.7): Kuma's notifier posts the standard payload
//! (to `/event/push/alert/standard` or to its alias `/event/push/alert/uptimekuma`), so this
//! adapter is the standard protocol of §2.2 itself — one code path, no second copy of its
//! validation.

use klaxon_core::error::ApiError;
use klaxon_core::model::NewEvent;
use klaxon_core::standard::{PushContext, parse_standard};
use serde_json::Value;

use crate::Context;

pub fn parse(body: &Value, ctx: &Context<'_>) -> Result<NewEvent, ApiError> {
    let push = PushContext {
        integration_id: ctx.integration_id,
        query_labels: ctx.query_labels,
        received_at: ctx.received_at,
    };
    let mut event = parse_standard(body, &push)?;
    event.raw = body.to_string();
    Ok(event)
}

#[cfg(test)]
mod tests {
    use super::*;
    use klaxon_core::model::Status;
    use serde_json::json;

    fn ctx() -> Context<'static> {
        Context {
            integration_id: 5,
            query_labels: &[],
            received_at: 1_700_000_000_000,
            console_url: None,
        }
    }

    /// What Kuma's notifier sends for a monitor going down (severity chosen in Kuma).
    fn down() -> Value {
        json!({
            "title": "Uptime Kuma Monitor \"shop\" is DOWN",
            "event_status": "Critical",
            "alert_key": "12",
            "description": "[shop] [DOWN] Connection refused",
            "labels": {"check": "shop", "resource": "https://shop.example", "env": "prod"}
        })
    }

    // spec: ING-023 (literal title), §3.7 — DOWN opens, keyed by the monitor id.
    #[test]
    fn monitor_down_is_a_trigger() {
        let e = parse(&down(), &ctx()).unwrap();
        assert_eq!(e.event_status, Status::Critical);
        assert_eq!(e.title, "Uptime Kuma Monitor \"shop\" is DOWN");
        assert_eq!(e.alert_key, "12");
        assert_eq!(e.labels["check"], "shop");
        assert_eq!(e.labels["resource"], "https://shop.example");
        assert!(e.raw.contains("\"alert_key\":\"12\""));
    }

    // spec: ING-025, §3.7 — UP is Ok with the same key.
    #[test]
    fn monitor_up_is_a_recovery() {
        let mut up = down();
        up["event_status"] = json!("Ok");
        up["title"] = json!("Uptime Kuma Monitor \"shop\" is UP");
        let e = parse(&up, &ctx()).unwrap();
        assert_eq!(e.event_status, Status::Ok);
        assert_eq!(e.alert_key, "12");
    }

    // spec: ING-021 — the standard validation applies unchanged.
    #[test]
    fn standard_validation_applies() {
        let mut bad = down();
        bad["event_status"] = json!("DOWN");
        assert_eq!(
            parse(&bad, &ctx()).unwrap_err().message,
            "event_status is invalid"
        );
        let mut no_key = down();
        no_key["event_status"] = json!("Ok");
        no_key.as_object_mut().unwrap().remove("alert_key");
        assert_eq!(
            parse(&no_key, &ctx()).unwrap_err().message,
            "alert_key is required when event_status is Ok"
        );
    }
}
