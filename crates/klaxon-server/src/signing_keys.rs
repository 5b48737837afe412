//! `GET /signing-keys` (SVC-191; docs/backup.md "Signed certificates"): the operator's
//! public signing keys, published without authentication so anyone holding a purge
//! certificate can check its signature offline (`klaxon admin verify-certificate`). SaaS
//! nodes only; the key is made on the first call if no purge has made it yet.

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/signing-keys", get(list))
}

async fn list(State(state): State<AppState>) -> Response {
    if state.saas.is_none() {
        return StatusCode::NOT_FOUND.into_response();
    }
    let kek = match state.config.deployment.kek() {
        Ok(Some(k)) => k,
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    if let Err(e) = state.store.operator_signer(&kek, state.clock.now()).await {
        tracing::error!(error = %e, "the operator signing key is not usable");
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let keys = match state.store.operator_signing_keys().await {
        Ok(k) => k,
        Err(e) => {
            tracing::error!(error = %e, "reading the signing keys failed");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };
    let items: Vec<_> = keys
        .iter()
        .map(|k| {
            json!({
                "key_id": k.key_id,
                "algorithm": klaxon_store::signing::ALGORITHM,
                "public_key": k.public_key,
                "created_at": k.created_at / 1000,
                "retired_at": k.retired_at / 1000,
            })
        })
        .collect();
    (
        [(header::CONTENT_TYPE, "application/json")],
        json!({ "items": items }).to_string(),
    )
        .into_response()
}
