//! The events of one alert, drawn into the incident detail when its "Events" disclosure is
//! opened (`/alert-event/list` with the alert's id, newest first, the latest 50): when each
//! came, its status and severity, title, description and labels — what the monitoring tool
//! actually sent, for "why is this alert still active?".

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use minijinja::context;
use serde_json::{Value, json};

use super::incidents::{j, now_secs, page_headers};
use super::{fetch, page_error, view, viewer};
use crate::state::AppState;

/// Events shown per alert; the count on the alert says how many there are in all.
const SHOWN: i64 = 50;
/// Characters of a description shown.
const DESCRIPTION_SHOWN: usize = 300;

pub fn routes() -> Router<AppState> {
    Router::new().route("/alert/{alert_id}/events", get(events))
}

async fn events(
    State(state): State<AppState>,
    Path(alert_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let viewer = match viewer(&state, &Method::GET, &headers, "/incidents").await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let page = match fetch(
        &state,
        &viewer,
        "/alert-event/list",
        json!({"alert_id": alert_id, "limit": SHOWN}),
    )
    .await
    {
        Ok(p) => p,
        Err(e) => return page_error(&e),
    };
    // Long descriptions are cut: the whole event is in the Open API.
    let items: Vec<Value> = page["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            let mut e = e.clone();
            let text = e["description"].as_str().unwrap_or_default();
            if text.chars().count() > DESCRIPTION_SHOWN {
                let cut: String = text.chars().take(DESCRIPTION_SHOWN).collect();
                e["description"] = Value::String(format!("{cut}…"));
            }
            e
        })
        .collect();
    let ctx = context! {
        events => j(&items),
        total => page["total"].clone().as_i64().unwrap_or(0),
        shown => SHOWN,
        now => now_secs(&state),
    };
    page_headers(view::render("alert_events.html", ctx).into_response())
}
