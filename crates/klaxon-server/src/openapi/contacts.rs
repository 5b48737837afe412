//! A member's own change of e-mail address or phone number (response.md RSP-333; a Klaxon
//! extension, as Flashduty does this only in its console):
//!
//! - `/member/self/contact/code`: `{email}` or `{phone, country_code?}` sends a 6-digit code
//!   to that new address (by e-mail) or number (by SMS) and answers
//!   `{kind, target, expires_in_seconds}`; the phone is masked as everywhere on the wire.
//! - `/member/self/contact/verify`: `{kind: "email"|"phone", code}` checks the code against
//!   the latest one sent for that kind and, if right, makes the address or number the
//!   member's, verified. It answers `{kind, email|phone, verified: true}`.
//!
//! Only the member can do this, for themselves (RSP-333: administrators cannot); an
//! account-level APP key belongs to no member and is refused. The rules of the code — 10
//! minutes, 5 tries, 5 codes an hour per address and per member — are those of
//! `klaxon_core::one_time_code`. The same flow proves a contact the member already has.

use klaxon_core::directory as rules;
use klaxon_core::error::{ApiError, ErrorCode};
use klaxon_core::one_time_code::{CODE_DIGITS, CODE_TTL, CodeRefusal};
use klaxon_notify::smtp::Mailer;
use klaxon_store::{ContactChange, ContactCodeIssue, ContactKind, ContactTarget};
use rand::Rng;
use serde_json::{Value, json};

use super::teams::store_err;
use super::{Args, Caller};
use crate::state::AppState;

pub const PATHS: &[&str] = &["/member/self/contact/code", "/member/self/contact/verify"];

pub async fn dispatch(
    state: &AppState,
    caller: &Caller,
    path: &str,
    args: &Args,
) -> Option<Result<Option<Value>, ApiError>> {
    Some(match path {
        "/member/self/contact/code" => send_code(state, caller, args).await.map(Some),
        "/member/self/contact/verify" => verify(state, caller, args).await.map(Some),
        _ => return None,
    })
}

/// The member a self-service call acts for; an account-level APP key belongs to none.
pub(super) fn own_member(caller: &Caller) -> Result<i64, ApiError> {
    if caller.account_key {
        return Err(ApiError::invalid(
            "app_key: an account-level APP key belongs to no member",
        ));
    }
    Ok(caller.member_id)
}

fn text<'a>(args: &'a Args, name: &str) -> Result<Option<&'a str>, ApiError> {
    match args.raw().get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ApiError::invalid(format!("{name} must be a string"))),
    }
}

/// The address or number asked for, validated and normalised like everywhere else.
fn target_of(args: &Args) -> Result<ContactTarget, ApiError> {
    match (text(args, "email")?, text(args, "phone")?) {
        (Some(email), None) => Ok(ContactTarget {
            kind: ContactKind::Email,
            value: rules::email("email", email)?,
            country_code: String::new(),
        }),
        (None, Some(phone)) => {
            let country_code = text(args, "country_code")?.unwrap_or_default();
            let p = rules::phone("phone", phone, country_code)?;
            Ok(ContactTarget {
                kind: ContactKind::Phone,
                value: p.e164,
                country_code: p.country_code,
            })
        }
        (Some(_), Some(_)) => Err(ApiError::invalid(
            "email, phone: give one of them, not both",
        )),
        (None, None) => Err(ApiError::invalid("email or phone is required")),
    }
}

fn new_code() -> String {
    let mut rng = rand::rng();
    (0..CODE_DIGITS)
        .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
        .collect()
}

/// Shown on the wire: an e-mail address as it is, a phone masked (RSP-551).
fn shown(target: &ContactTarget) -> String {
    match target.kind {
        ContactKind::Email => target.value.clone(),
        ContactKind::Phone => rules::mask_phone(&target.value),
    }
}

/// Refuses before anything is stored when no code could ever arrive.
fn check_sender(state: &AppState, kind: ContactKind) -> Result<(), ApiError> {
    let ready = match kind {
        ContactKind::Email => state.config.notify.email.is_some(),
        ContactKind::Phone => [
            &state.config.notify.twilio,
            &state.config.notify.twilio_backup,
        ]
        .into_iter()
        .flatten()
        .any(|t| t.sms),
    };
    if ready {
        return Ok(());
    }
    let (field, what, setting) = match kind {
        ContactKind::Email => ("email", "no e-mail sender", "notify.email"),
        ContactKind::Phone => ("phone", "no SMS provider", "notify.twilio"),
    };
    Err(ApiError::new(
        ErrorCode::BadRequest,
        format!("{field}: a verification code cannot be sent: {what} is configured ({setting})"),
    ))
}

async fn send_code(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let member_id = own_member(caller)?;
    let target = target_of(args)?;
    check_sender(state, target.kind)?;
    let code = new_code();
    let now = state.clock.now();
    let issued = state
        .store
        .issue_contact_code(caller.account_id, member_id, &target, &code, now)
        .await
        .map_err(store_err)?;
    let field = target.kind.as_str();
    match issued {
        ContactCodeIssue::Issued => {}
        ContactCodeIssue::Throttled { until } => {
            return Err(ApiError::new(
                ErrorCode::RequestTooFrequently,
                format!(
                    "{field}: 5 codes an hour at most; the next one can be sent in {} minutes",
                    ((until - now) / 60_000).max(1)
                ),
            ));
        }
        ContactCodeIssue::Taken => {
            return Err(ApiError::invalid(format!(
                "{field}: another member of the account already uses it"
            )));
        }
        ContactCodeIssue::AlreadyVerified => {
            return Err(ApiError::invalid(format!(
                "{field}: this is already your {field}, and it is verified"
            )));
        }
        ContactCodeIssue::NoMember => {
            return Err(ApiError::new(
                ErrorCode::ResourceNotFound,
                "member_id: the member does not exist",
            ));
        }
    }
    deliver(state, caller, &target, &code).await?;
    Ok(json!({
        "kind": field,
        "target": shown(&target),
        "expires_in_seconds": CODE_TTL.as_secs(),
    }))
}

/// Sends the code now, so that a failure is reported to the member who waits for it.
async fn deliver(
    state: &AppState,
    caller: &Caller,
    target: &ContactTarget,
    code: &str,
) -> Result<(), ApiError> {
    let minutes = CODE_TTL.as_mins();
    let rid = caller.origin.request_id.clone();
    let failed = |e: String| {
        tracing::warn!(kind = target.kind.as_str(), error = %e, "cannot send a verification code");
        ApiError::new(
            ErrorCode::InternalError,
            format!(
                "{}: the code could not be sent ({e}); try again later",
                target.kind.as_str()
            ),
        )
    };
    match target.kind {
        ContactKind::Email => {
            let Some(smtp) = state.config.notify.email.as_ref() else {
                return Err(failed("no e-mail sender".into()));
            };
            let mailer = Mailer::new(smtp, state.config.notify.timeout_ms).map_err(failed)?;
            let name = state
                .store
                .member(caller.account_id, caller.member_id)
                .await
                .map_err(store_err)?
                .map(|m| m.member_name)
                .unwrap_or_default();
            // ASCII and short lines, so the text part goes out as plain 7bit.
            let body = format!(
                "Your Klaxon verification code is\r\n\r\n{code}\r\n\r\n\
                 Enter it in your personal settings within {minutes} minutes to make this\r\n\
                 address your e-mail address in Klaxon at {}.\r\n\r\n\
                 If you did not ask for this, ignore this e-mail.\r\n",
                state.base_url
            );
            let html = format!("<pre>{}</pre>", crate::console::view::escape(&body));
            mailer
                .send(
                    &rid,
                    &target.value,
                    &name,
                    "Your Klaxon verification code",
                    html,
                    body,
                )
                .await
                .map(|_| ())
                .map_err(|e| failed(format!("{e:?}")))
        }
        ContactKind::Phone => {
            let text = format!(
                "Klaxon verification code: {code}. It works for {minutes} minutes. \
                 If you did not ask for it, ignore this message."
            );
            let accounts = [
                &state.config.notify.twilio,
                &state.config.notify.twilio_backup,
            ];
            let mut last = String::from("no SMS provider");
            for cfg in accounts.into_iter().flatten().filter(|t| t.sms) {
                match state.im_http.sms(cfg, &rid, &target.value, &text).await {
                    Ok(_) => return Ok(()),
                    Err(e) => last = format!("{e:?}"),
                }
            }
            Err(failed(last))
        }
    }
}

async fn verify(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let member_id = own_member(caller)?;
    let kind = match text(args, "kind")? {
        Some(k) => ContactKind::parse(k)
            .ok_or_else(|| ApiError::invalid("kind must be \"email\" or \"phone\""))?,
        None => return Err(ApiError::invalid("kind is required")),
    };
    let typed = text(args, "code")?.ok_or_else(|| ApiError::invalid("code is required"))?;
    // "123 456" and "123-456", as people copy codes, are the code too.
    let code = klaxon_core::login_code::normalize_code(typed)
        .ok_or_else(|| ApiError::invalid(format!("code: it has {CODE_DIGITS} digits")))?;
    let code = code.as_str();
    let change = state
        .store
        .confirm_contact_code(caller.account_id, member_id, kind, code, state.clock.now())
        .await
        .map_err(store_err)?;
    match change {
        ContactChange::Changed { target, .. } => {
            Ok(json!({"kind": kind.as_str(), kind.as_str(): shown(&target), "verified": true}))
        }
        ContactChange::Refused(refusal) => Err(ApiError::invalid(format!(
            "code: {}",
            match refusal {
                CodeRefusal::None =>
                    "no code was sent for this kind, or it was already used; ask for a new one"
                        .to_string(),
                other => other.message(),
            }
        ))),
        ContactChange::Taken => Err(ApiError::invalid(format!(
            "{}: another member of the account took it meanwhile",
            kind.as_str()
        ))),
    }
}
