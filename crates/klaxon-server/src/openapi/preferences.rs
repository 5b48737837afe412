//! The caller's own notification preference (response.md 1.15, §2.21; a Klaxon extension —
//! Flashduty edits it only in its console, and the docs list no endpoint):
//!
//! - `/member/preference/info`: `{member_id, critical, warning, info, is_default, warnings}`.
//!   Each list holds `{channel, integration_id?}`; `is_default` says the member never saved
//!   one and has the defaults of OQ-24; `warnings` lists every chosen channel that lacks its
//!   precondition today (RSP-281, RSP-332), so the console can say so.
//! - `/member/preference/update`: `{critical, warning, info}`, every list required; the
//!   answer is the new `/member/preference/info`. A channel entry is a name (`"sms"`) or
//!   `{channel, integration_id}`; `integration_id` must name an IM integration of the
//!   account of the channel's kind. A `member_id` other than the caller's is refused: only the
//!   member changes their own preference.
//!
//! Any member may call both (route access `Member` and `OwnSettings`); an account-level APP
//! key belongs to no member and is refused.

use klaxon_core::error::{ApiError, ErrorCode};
use klaxon_core::response::NotificationPreference;
use klaxon_core::response::preference::{SEVERITIES, im_kind};
use serde_json::{Value, json};

use super::teams::store_err;
use super::{Args, Caller};
use crate::state::AppState;

pub const PATHS: &[&str] = &["/member/preference/info", "/member/preference/update"];

pub async fn dispatch(
    state: &AppState,
    caller: &Caller,
    path: &str,
    args: &Args,
) -> Option<Result<Option<Value>, ApiError>> {
    Some(match path {
        "/member/preference/info" => info(state, caller).await.map(Some),
        "/member/preference/update" => update(state, caller, args).await.map(Some),
        _ => return None,
    })
}

fn own_member(caller: &Caller) -> Result<i64, ApiError> {
    if caller.account_key {
        return Err(ApiError::invalid(
            "app_key: an account-level APP key belongs to no member",
        ));
    }
    Ok(caller.member_id)
}

async fn info(state: &AppState, caller: &Caller) -> Result<Value, ApiError> {
    let member_id = own_member(caller)?;
    let stored = state
        .store
        .member_preference(caller.account_id, member_id)
        .await
        .map_err(store_err)?;
    let is_default = stored.is_none();
    let pref = stored.unwrap_or_default();
    describe(state, caller.account_id, member_id, &pref, is_default).await
}

async fn update(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let member_id = own_member(caller)?;
    if let Some(other) = args.i64("member_id")?
        && other != 0
        && other != member_id
    {
        return Err(ApiError::new(
            ErrorCode::AccessDenied,
            "member_id: only the member themself may change their notification preference",
        ));
    }
    let pref = NotificationPreference::from_wire(&Value::Object(args.raw().clone()))
        .map_err(|e| ApiError::invalid(e.to_string()))?;
    for (field, channel, id) in pref.integration_refs() {
        let kind = im_kind(channel).unwrap_or_default();
        let found = state
            .store
            .im_integration(caller.account_id, id)
            .await
            .map_err(store_err)?;
        match found {
            Some(i) if i.kind == kind => {}
            Some(i) => {
                return Err(ApiError::invalid(format!(
                    "{field}: integration {id} is a {} integration, not {kind} (channel {channel})",
                    i.kind
                )));
            }
            None => {
                return Err(ApiError::new(
                    ErrorCode::ResourceNotFound,
                    format!("{field}: no IM integration {id} in this account"),
                ));
            }
        }
    }
    state
        .store
        .set_member_preference(caller.account_id, member_id, &pref, state.clock.now())
        .await
        .map_err(store_err)?;
    describe(state, caller.account_id, member_id, &pref, false).await
}

/// The wire object, with the warnings of RSP-332: each chosen channel that cannot reach the
/// member today, with the `failed_reason` its sends would record (RSP-281).
async fn describe(
    state: &AppState,
    account_id: i64,
    member_id: i64,
    pref: &NotificationPreference,
    is_default: bool,
) -> Result<Value, ApiError> {
    let me = state
        .store
        .persons(account_id, &[member_id])
        .await
        .map_err(store_err)?
        .into_iter()
        .next();
    let mut warnings = Vec::new();
    for sev in SEVERITIES {
        let name = sev.as_str().to_lowercase();
        for (i, entry) in pref.for_severity(sev).iter().enumerate() {
            let reason = match (entry.channel.as_str(), &me) {
                (_, None) => Some("member_inactive"),
                ("email", Some(p)) if p.email.trim().is_empty() => Some("contact_missing"),
                ("email", Some(p)) if !p.email_verified => Some("contact_unverified"),
                ("sms" | "voice", Some(p)) if p.phone.trim().is_empty() => Some("contact_missing"),
                ("sms" | "voice", Some(p)) if !p.phone_verified => Some("contact_unverified"),
                // RSP-281: app push needs a registered device.
                ("app", _) => state
                    .store
                    .push_devices(account_id, member_id)
                    .await
                    .map_err(store_err)?
                    .is_empty()
                    .then_some("no_device"),
                (c, _) if im_kind(c).is_some() => {
                    let kind = im_kind(c).unwrap_or_default();
                    let linked = state
                        .store
                        .im_target_on(account_id, kind, member_id, entry.integration_id)
                        .await
                        .map_err(store_err)?;
                    linked.is_none().then_some("app_not_linked")
                }
                _ => None,
            };
            if let Some(reason) = reason {
                warnings.push(json!({
                    "field": format!("{name}[{i}]"),
                    "channel": entry.channel,
                    "integration_id": entry.integration_id,
                    "reason": reason,
                    "message": warning_text(&entry.channel, reason),
                }));
            }
        }
    }
    let mut out = pref.to_wire();
    if let Some(obj) = out.as_object_mut() {
        obj.insert("member_id".into(), json!(member_id));
        obj.insert("is_default".into(), json!(is_default));
        obj.insert("warnings".into(), Value::Array(warnings));
    }
    Ok(out)
}

fn warning_text(channel: &str, reason: &str) -> String {
    match reason {
        "contact_missing" if channel == "email" => {
            "you have no email address on file, so email notifications fail".into()
        }
        "contact_missing" => format!("you have no phone number on file, so {channel} fails"),
        "contact_unverified" if channel == "email" => {
            "your email address is not verified, so email notifications fail".into()
        }
        "contact_unverified" => format!("your phone number is not verified, so {channel} fails"),
        "no_device" => {
            "you have no device for app push (add one in your settings), so app push fails".into()
        }
        "app_not_linked" => format!(
            "your {channel} identity is not linked, so these messages fail (app_not_linked) \
             and SMS and e-mail are sent instead"
        ),
        other => format!("{channel} cannot reach you: {other}"),
    }
}
