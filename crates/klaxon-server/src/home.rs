//! `GET /`: a small status page, so the address the banner prints answers in a browser.
//! The console (sign-in, incident views) replaces it when it lands.

use axum::Router;
use axum::extract::State;
use axum::response::Html;
use axum::routing::get;

use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/", get(home))
}

async fn home(State(state): State<AppState>) -> Html<String> {
    let depth = state
        .store
        .inbox_depth()
        .await
        .map_or_else(|_| "unknown".to_string(), |d| d.to_string());
    let version = env!("CARGO_PKG_VERSION");
    Html(format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Klaxon</title>\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"></head>\
         <body style=\"font-family: system-ui, sans-serif; max-width: 40rem; margin: 3rem auto; line-height: 1.5\">\
         <h1>Klaxon {version}</h1>\
         <p>This node is running. Events waiting to be processed: {depth}.</p>\
         <ul>\
         <li>Push alerts: <code>POST /event/push/alert/standard?integration_key=…</code> (the key was printed at start-up)</li>\
         <li>Open API: <code>POST /incident/list</code>, <code>/alert/list</code>, … with <code>?app_key=…</code> or <code>Authorization: Bearer …</code></li>\
         <li>Health: <a href=\"/healthz\">/healthz</a>, <a href=\"/readyz\">/readyz</a>, <a href=\"/metrics\">/metrics</a></li>\
         </ul>\
         <p>The web console is not part of this release yet; use the API and the credentials printed at the first start.</p>\
         </body></html>\n"
    ))
}
