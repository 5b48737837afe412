//! Label suggestions for the condition editors (ingest.md ING-261): the `<option>`s a rule
//! form's key list (`<datalist id="condition-keys">`) loads when it is shown, taken from at
//! most the 500 most recent events of the last 24 h of the channel (drop, silence and inhibit
//! rules) or integration (routing, pipeline, enrichment) being edited. Each option is a
//! `labels.<key>` with a few of the values seen. Keys can always be typed by hand, so an empty
//! answer just leaves the list as it was.

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use klaxon_core::label_suggest::{self, EVENTS_READ, WINDOW_MS};
use klaxon_store::EventSource;
use minijinja::context;
use serde::Deserialize;
use serde_json::json;

use super::incidents::{j, page_headers};
use super::{fetch, page_error, view, viewer};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/label-suggestions", get(suggestions))
}

#[derive(Debug, Deserialize)]
struct Source {
    channel_id: Option<i64>,
    integration_id: Option<i64>,
}

async fn suggestions(
    State(state): State<AppState>,
    Query(source): Query<Source>,
    headers: HeaderMap,
) -> Response {
    let viewer = match viewer(&state, &Method::GET, &headers, "/channels").await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    // Reading the channel or integration through the Open API first applies its access
    // rules: someone who may not see it gets its error, not its labels.
    let (path, args, source) = match (source.channel_id, source.integration_id) {
        (Some(id), None) => (
            "/channel/info",
            json!({"channel_id": id}),
            EventSource::Channel(id),
        ),
        (None, Some(id)) => (
            "/integration/info",
            json!({"integration_id": id}),
            EventSource::Integration(id),
        ),
        _ => {
            return (
                StatusCode::BAD_REQUEST,
                "give exactly one of channel_id and integration_id",
            )
                .into_response();
        }
    };
    if let Err(e) = fetch(&state, &viewer, path, args).await {
        return page_error(&e);
    }
    let since = state.clock.now().saturating_sub(WINDOW_MS);
    let labels = match state
        .store
        .recent_event_labels(viewer.caller.account_id, source, since, EVENTS_READ)
        .await
    {
        Ok(l) => l,
        Err(e) => {
            return page_error(&klaxon_core::error::ApiError::internal(e.to_string()));
        }
    };
    let keys: Vec<serde_json::Value> = label_suggest::suggest(&labels)
        .into_iter()
        .map(|s| json!({"key": s.key, "values": s.values}))
        .collect();
    page_headers(
        view::render("label_suggestions.html", context! { keys => j(&keys) }).into_response(),
    )
}
