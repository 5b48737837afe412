//! The changes that may explain an incident (ingest.md ING-244), drawn into the incident
//! detail when its "Related changes" disclosure is opened: deployments and other changes whose
//! active period overlaps the two hours before the incident started, the ones sharing the most
//! of `service`, `app`, `cluster`, `resource`, `host` and `env` with the incident first.
//! Both reads go through the Open API (`/incident/info`, `/change/list`), so the viewer sees
//! only what the API would show them.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use klaxon_core::change::correlation::{self, Candidate};
use klaxon_core::model::Labels;
use minijinja::context;
use serde_json::{Value, json};

use super::incidents::{j, now_secs, page_headers};
use super::{fetch, page_error, view, viewer};
use crate::state::AppState;

/// Changes read from the window (the newest first); the ranking orders these.
const READ: i64 = 100;
/// Changes shown after ranking.
const SHOWN: usize = 10;

pub fn routes() -> Router<AppState> {
    Router::new().route("/incident/{incident_id}/changes", get(related))
}

fn labels_of(v: &Value) -> Labels {
    v.as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
        .collect()
}

async fn related(
    State(state): State<AppState>,
    Path(incident_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let viewer = match viewer(&state, &Method::GET, &headers, "/incidents").await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let incident = match fetch(
        &state,
        &viewer,
        "/incident/info",
        json!({"incident_id": incident_id}),
    )
    .await
    {
        Ok(i) => i,
        Err(e) => return page_error(&e),
    };
    // The Open API speaks seconds; the ranking works in milliseconds.
    let start_ms = incident["start_time"]
        .as_i64()
        .unwrap_or(0)
        .saturating_mul(1000);
    let (from, to) = correlation::window(start_ms);
    let page = match fetch(
        &state,
        &viewer,
        "/change/list",
        json!({
            "start_time": from.div_euclid(1000),
            "end_time": to.div_euclid(1000),
            "limit": READ,
        }),
    )
    .await
    {
        Ok(p) => p,
        Err(e) => return page_error(&e),
    };
    let candidates: Vec<Candidate<Value>> = page["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| Candidate {
            labels: labels_of(&c["labels"]),
            start_time: c["start_time"].as_i64().unwrap_or(0).saturating_mul(1000),
            // An open change has end_time 0 and stays active until now.
            end_time: c["end_time"].as_i64().unwrap_or(0).saturating_mul(1000),
            item: c.clone(),
        })
        .collect();
    let now_ms = state.clock.now();
    let ranked = correlation::rank(
        start_ms,
        &labels_of(&incident["labels"]),
        candidates,
        now_ms,
    );
    let found = ranked.len();
    let items: Vec<Value> = ranked
        .into_iter()
        .take(SHOWN)
        .map(|r| {
            let mut c = r.item;
            c["shared"] = json!(r.shared);
            c
        })
        .collect();
    let ctx = context! {
        changes => j(&items),
        found => found,
        shown => SHOWN,
        now => now_secs(&state),
    };
    page_headers(view::render("related_changes.html", ctx).into_response())
}
