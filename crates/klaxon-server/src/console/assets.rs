//! The console's static files, compiled into the binary. Their URLs carry a hash of the
//! content, so they can be cached for a year (`immutable`) and a new release is still
//! picked up at once.

use std::sync::OnceLock;

use axum::Router;
use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};

use crate::state::AppState;

/// The vendored htmx (assets/README.md says how to update it).
pub const HTMX_VERSION: &str = "2.0.11";
const HTMX: &[u8] = include_bytes!("../../assets/htmx.min.js");
const CSS: &[u8] = include_bytes!("../../assets/console.css");
/// Dragging overrides on a schedule's timeline; the override form works without it.
const SCHEDULE_DRAG: &[u8] = include_bytes!("../../assets/schedule_drag.js");

struct Asset {
    name: String,
    body: &'static [u8],
    content_type: &'static str,
}

fn hashed(stem: &str, ext: &str, body: &'static [u8], content_type: &'static str) -> Asset {
    let digest = hex::encode(Sha256::digest(body));
    Asset {
        name: format!("{stem}.{}.{ext}", &digest[..12]),
        body,
        content_type,
    }
}

fn all() -> &'static [Asset; 3] {
    static ASSETS: OnceLock<[Asset; 3]> = OnceLock::new();
    ASSETS.get_or_init(|| {
        [
            hashed(
                &format!("htmx-{HTMX_VERSION}"),
                "min.js",
                HTMX,
                "text/javascript; charset=utf-8",
            ),
            hashed("console", "css", CSS, "text/css; charset=utf-8"),
            hashed(
                "schedule_drag",
                "js",
                SCHEDULE_DRAG,
                "text/javascript; charset=utf-8",
            ),
        ]
    })
}

/// The URL of the vendored htmx.
pub fn htmx_url() -> String {
    format!("/assets/{}", all()[0].name)
}

/// The URL of the stylesheet.
pub fn css_url() -> String {
    format!("/assets/{}", all()[1].name)
}

/// The URL of the timeline's drag script.
pub fn schedule_drag_url() -> String {
    format!("/assets/{}", all()[2].name)
}

pub fn routes() -> Router<AppState> {
    Router::new().route("/assets/{name}", get(serve))
}

async fn serve(Path(name): Path<String>) -> Response {
    match all().iter().find(|a| a.name == name) {
        Some(a) => (
            [
                (header::CONTENT_TYPE, a.content_type),
                (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            a.body,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such asset").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asset_urls_change_with_the_content() {
        assert!(htmx_url().starts_with("/assets/htmx-2.0.11."));
        assert!(htmx_url().ends_with(".min.js"));
        assert!(css_url().starts_with("/assets/console."));
        assert_ne!(htmx_url(), css_url());
        assert!(schedule_drag_url().starts_with("/assets/schedule_drag."));
        assert!(schedule_drag_url().ends_with(".js"));
    }
}
