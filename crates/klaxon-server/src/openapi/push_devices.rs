//! A member's own devices for app push (response.md RSP-285; docs/notifications.md "App
//! push"; a Klaxon extension, since Flashduty's devices register through its own app):
//!
//! - `/member/self/device/list` → `{items: [{device_id, name, subscribe_url, created_at,
//!   last_sent_at}]}` (times in Unix seconds, 0 = never);
//! - `/member/self/device/create` `{name}` → the new device with its `subscribe_url`, the
//!   ntfy topic URL to subscribe the ntfy app on the phone to. The topic is made up here:
//!   `klaxon-` and 26 random base-32 characters (130 bits), since whoever knows it can read
//!   the pushes. At most five devices per member;
//! - `/member/self/device/delete` `{device_id}` removes one of the caller's devices.
//!
//! Only the member manages their devices; an account-level APP key belongs to no member and
//! is refused. Without `[notify.push]` in the configuration a device cannot be added.

use klaxon_core::error::{ApiError, ErrorCode};
use klaxon_store::{MAX_PUSH_DEVICES, PushDevice};
use rand::Rng;
use serde_json::{Value, json};

use super::contacts::own_member;
use super::teams::store_err;
use super::{Args, Caller};
use crate::state::AppState;

pub const PATHS: &[&str] = &[
    "/member/self/device/list",
    "/member/self/device/create",
    "/member/self/device/delete",
];

/// A device's name: what the member calls the phone.
const MAX_NAME_CHARS: usize = 64;

pub async fn dispatch(
    state: &AppState,
    caller: &Caller,
    path: &str,
    args: &Args,
) -> Option<Result<Option<Value>, ApiError>> {
    Some(match path {
        "/member/self/device/list" => list(state, caller).await.map(Some),
        "/member/self/device/create" => create(state, caller, args).await.map(Some),
        "/member/self/device/delete" => delete(state, caller, args).await.map(|()| None),
        _ => return None,
    })
}

/// The URL the ntfy app subscribes to for `topic` on the configured server; "" when app
/// push is not configured (any more).
pub(crate) fn subscribe_url(state: &AppState, topic: &str) -> String {
    state
        .config
        .notify
        .push
        .as_ref()
        .map(|p| format!("{}/{topic}", p.ntfy_url.trim().trim_end_matches('/')))
        .unwrap_or_default()
}

fn wire(state: &AppState, d: &PushDevice) -> Value {
    json!({
        "device_id": d.device_id,
        "name": d.name,
        "subscribe_url": subscribe_url(state, &d.topic),
        "created_at": d.created_at / 1000,
        "last_sent_at": d.last_sent_at / 1000,
    })
}

/// `klaxon-` and 26 characters of RFC 4648 base 32 (lower case): 130 random bits, and only
/// characters ntfy allows in a topic.
fn new_topic() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut rng = rand::rng();
    let tail: String = (0..26)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect();
    format!("klaxon-{tail}")
}

async fn list(state: &AppState, caller: &Caller) -> Result<Value, ApiError> {
    let member_id = own_member(caller)?;
    let devices = state
        .store
        .push_devices(caller.account_id, member_id)
        .await
        .map_err(store_err)?;
    let items: Vec<Value> = devices.iter().map(|d| wire(state, d)).collect();
    Ok(json!({ "items": items }))
}

async fn create(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let member_id = own_member(caller)?;
    let name = args
        .str("name")?
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::invalid("name is required"))?;
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(ApiError::invalid(format!(
            "name: at most {MAX_NAME_CHARS} characters"
        )));
    }
    if state.config.notify.push.is_none() {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            "app push is not configured on this server (notify.push), so no device can be added",
        ));
    }
    let created = state
        .store
        .create_push_device(
            caller.account_id,
            member_id,
            &name,
            &new_topic(),
            state.clock.now(),
        )
        .await
        .map_err(store_err)?
        .ok_or_else(|| {
            ApiError::invalid(format!(
                "name: you have {MAX_PUSH_DEVICES} devices already; delete one first"
            ))
        })?;
    Ok(wire(state, &created))
}

async fn delete(state: &AppState, caller: &Caller, args: &Args) -> Result<(), ApiError> {
    let member_id = own_member(caller)?;
    let device_id = args
        .i64("device_id")?
        .ok_or_else(|| ApiError::invalid("device_id is required"))?;
    let deleted = state
        .store
        .delete_push_device(caller.account_id, member_id, device_id)
        .await
        .map_err(store_err)?;
    if !deleted {
        return Err(ApiError::new(
            ErrorCode::ResourceNotFound,
            format!("device_id: you have no device {device_id}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_are_long_random_and_valid_for_ntfy() {
        let a = new_topic();
        let b = new_topic();
        assert_ne!(a, b);
        assert_eq!(a.len(), "klaxon-".len() + 26);
        // ntfy topics: letters, digits, `-` and `_`, at most 64.
        assert!(a.len() <= 64);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        );
    }
}
