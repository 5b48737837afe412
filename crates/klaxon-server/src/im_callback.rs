//! What every IM callback route (Slack, Feishu/Lark, DingTalk, WeCom, Microsoft Teams) does
//! before its own authenticity check: read the body within a bound, and find the integration
//! of the kind its URL names. Each platform's module then checks its own signature.

use axum::body::{Body, Bytes};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, Limited};
use klaxon_store::ImIntegration;

use crate::state::AppState;

/// A callback refused as not authentic (401, with the reason as plain text).
pub(crate) fn refuse(why: &str) -> Response {
    (StatusCode::UNAUTHORIZED, why.to_string()).into_response()
}

/// The body, at most `max` bytes; a longer one is answered 413.
pub(crate) async fn body(body: Body, max: usize) -> Result<Bytes, Response> {
    Limited::new(body, max)
        .collect()
        .await
        .map(|c| c.to_bytes())
        .map_err(|_| (StatusCode::PAYLOAD_TOO_LARGE, "body too large").into_response())
}

/// The `kind` integration (`slack`, `feishu`, `dingtalk`, `wecom`, `teams`) a callback URL
/// names. An unknown id, or one of another kind, is refused like a bad signature, so the
/// answer does not tell which ids exist.
pub(crate) async fn integration(
    state: &AppState,
    integration_id: &str,
    kind: &str,
) -> Result<ImIntegration, Response> {
    let Ok(id) = integration_id.parse::<i64>() else {
        return Err(refuse("unknown integration"));
    };
    match state.store.im_integration_for_callback(id).await {
        Ok(Some(i)) if i.kind == kind => Ok(i),
        Ok(_) => Err(refuse("unknown integration")),
        Err(e) => {
            tracing::error!(error = %e, "cannot load the IM integration");
            Err(StatusCode::INTERNAL_SERVER_ERROR.into_response())
        }
    }
}
