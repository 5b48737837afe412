//! One-click action links (docs/notifications.md "Acting from an e-mail or a push"): an
//! e-mail or an app push to a member carries `/act/{token}`, which acts on the incident as
//! that member without signing in. The token is the credential: 32 random bytes, stored
//! hashed, living a day (klaxon_store::action_links).
//!
//! - `GET /act/{token}[?do=ack|close|snooze]` shows the incident and one button per action,
//!   the one the link named first. A GET never changes anything: mail scanners and link
//!   previews open links before a person does.
//! - `POST /act/{token}` with `action=ack|close|snooze` (and `minutes` for a snooze, 1..1440,
//!   default 120) acts, through the same path as the console (permissions, licences, audit),
//!   with the timeline's `from` naming the notification's channel (`email`, or `card` for the
//!   app push: response.md RSP-036), and shows the result. The app push's buttons post here.
//!
//! A token never handed out, altered or expired gets 404 and changes nothing.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use klaxon_core::model::Progress;
use klaxon_store::ActionLinkTarget;
use minijinja::context;
use serde::Deserialize;

use super::view;
use crate::acting::{Acted, Verb, act};
use crate::state::AppState;

/// A snooze from a link lasts this long unless the form says otherwise (the console's first
/// choice, RSP-040).
const DEFAULT_SNOOZE_MINUTES: i64 = 120;

pub fn routes() -> Router<AppState> {
    Router::new().route("/act/{token}", get(show).post(perform))
}

#[derive(Deserialize)]
struct Shown {
    #[serde(rename = "do")]
    action: Option<String>,
}

async fn target(state: &AppState, token: &str) -> Result<ActionLinkTarget, Response> {
    match state
        .store
        .action_link_target(token, state.clock.now())
        .await
    {
        Ok(Some(t)) => Ok(t),
        Ok(None) => Err(page(
            StatusCode::NOT_FOUND,
            context! {
                title => "Link expired",
                problem => "This link is unknown or has expired. Nothing was changed.",
            },
        )),
        Err(e) => {
            tracing::error!(error = %e, "cannot read an action link");
            Err(page(
                StatusCode::SERVICE_UNAVAILABLE,
                context! {
                    title => "Try again",
                    problem => "Klaxon cannot read this link right now. Nothing was changed.",
                },
            ))
        }
    }
}

fn page(status: StatusCode, ctx: minijinja::Value) -> Response {
    (status, view::render("action_link.html", ctx)).into_response()
}

async fn show(
    State(state): State<AppState>,
    Path(token): Path<String>,
    Query(shown): Query<Shown>,
) -> Response {
    let t = match target(&state, &token).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let inc = match state.store.incident(t.account_id, &t.incident_id).await {
        Ok(Some(inc)) => inc,
        Ok(None) => {
            return page(
                StatusCode::NOT_FOUND,
                context! { title => "Gone", problem => "This incident no longer exists." },
            );
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot load the incident of an action link");
            return page(
                StatusCode::SERVICE_UNAVAILABLE,
                context! {
                    title => "Try again",
                    problem => "Klaxon cannot read the incident right now. Nothing was changed.",
                },
            );
        }
    };
    let first = match shown.action.as_deref() {
        Some("close") => "close",
        Some("snooze") => "snooze",
        _ => "ack",
    };
    page(
        StatusCode::OK,
        context! {
            title => format!("INC #{} {}", inc.num, inc.title),
            num => inc.num,
            incident_title => inc.title,
            severity => inc.incident_severity.as_str(),
            progress => format!("{:?}", inc.progress),
            closed => inc.progress == Progress::Closed,
            acknowledged => inc.progress == Progress::Processing,
            first => first,
            token => token,
            detail_url => format!("/incident/detail/{}", inc.incident_id),
            expires_at => t.expires_at / 1000,
        },
    )
}

/// The form, read leniently: `action` and an optional `minutes`.
fn parse_form(body: &[u8]) -> Result<Verb, String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
        .map_err(|_| "The form could not be read.".to_string())?;
    let field = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_string())
    };
    match field("action").as_deref() {
        Some("ack") => Ok(Verb::Acknowledge),
        Some("close") => Ok(Verb::Close),
        Some("snooze") => {
            let minutes = match field("minutes").filter(|m| !m.is_empty()) {
                None => DEFAULT_SNOOZE_MINUTES,
                Some(m) => m
                    .parse::<i64>()
                    .ok()
                    .filter(|m| (1..=1440).contains(m))
                    .ok_or_else(|| "A snooze lasts 1 to 1440 minutes.".to_string())?,
            };
            Ok(Verb::Snooze(minutes))
        }
        _ => Err("Choose acknowledge, close or snooze.".to_string()),
    }
}

async fn perform(
    State(state): State<AppState>,
    Path(token): Path<String>,
    body: Bytes,
) -> Response {
    let t = match target(&state, &token).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let verb = match parse_form(&body) {
        Ok(v) => v,
        Err(problem) => {
            return page(
                StatusCode::BAD_REQUEST,
                context! { title => "Nothing was changed", problem => problem, token => token },
            );
        }
    };
    // RSP-036: the app is recorded as `card`; an e-mail link as `email`.
    let source = if t.channel == "app" {
        crate::audit::SOURCE_CARD
    } else {
        crate::audit::SOURCE_LINK
    };
    let (status, done, problem) = match act(
        &state,
        t.account_id,
        t.member_id,
        &t.incident_id,
        verb,
        source,
    )
    .await
    {
        Acted::Done(num) => {
            let what = match verb {
                Verb::Acknowledge => "acknowledged".to_string(),
                Verb::Close => "closed".to_string(),
                Verb::Snooze(m) => format!("snoozed for {m} minutes"),
            };
            (
                StatusCode::OK,
                Some(format!("Incident {num} is {what}.")),
                None,
            )
        }
        Acted::AlreadyClosed(num) => (
            StatusCode::OK,
            None,
            Some(format!(
                "Incident {num} is already closed. Nothing was changed."
            )),
        ),
        Acted::Refused(why) => (
            StatusCode::CONFLICT,
            None,
            Some(format!("{why} Nothing was changed.")),
        ),
    };
    page(
        status,
        context! {
            title => if done.is_some() { "Done" } else { "Nothing was changed" },
            done => done,
            problem => problem,
            token => token,
            detail_url => format!("/incident/detail/{}", t.incident_id),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_names_one_action() {
        assert_eq!(parse_form(b"action=ack"), Ok(Verb::Acknowledge));
        assert_eq!(parse_form(b"action=close&minutes="), Ok(Verb::Close));
        assert_eq!(parse_form(b"action=snooze"), Ok(Verb::Snooze(120)));
        assert_eq!(
            parse_form(b"action=snooze&minutes=240"),
            Ok(Verb::Snooze(240))
        );
        // spec: RSP-040 — 1..1440 minutes.
        assert!(parse_form(b"action=snooze&minutes=0").is_err());
        assert!(parse_form(b"action=snooze&minutes=1441").is_err());
        assert!(parse_form(b"action=reopen").is_err());
        assert!(parse_form(b"").is_err());
    }
}
