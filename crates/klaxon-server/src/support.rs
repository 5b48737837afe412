//! The support desk of a SaaS deployment (service-agreement.md §12, SVC-171): mail to
//! `deployment.support_address` that reaches this node's SMTP receiver becomes a ticket, and
//! the node sends each ticket's acknowledgement and the staff replies.
//!
//! Receiving: the SMTP receiver accepts the support address as a recipient (SaaS mode only)
//! and files the parsed mail with `Store::support_receive` before it answers 250, so a 250
//! means the ticket is committed, as for every other intake.
//!
//! Sending: outbound messages are rows (`sent_at = 0` until sent). [`run`] sends them through
//! the `notify.email` SMTP sender with `Reply-To` the support address, so the sender's
//! answer comes back to the desk and threads on the `[#id]` in the subject.

use std::time::Duration;

use klaxon_notify::smtp::Mailer;
use klaxon_sources::email::Mail;
use klaxon_store::{IncomingMail, Received, SupportDesk};
use tokio::sync::watch;

use crate::state::{AppState, new_request_id};

/// How often the outbox is looked at. An acknowledgement is due within 5 minutes (SVC-171);
/// a few seconds leaves room for many retries.
const OUTBOX_EVERY: Duration = Duration::from_secs(2);
/// Most messages one pass sends.
const OUTBOX_BATCH: i64 = 50;

/// The support desk of this deployment: SaaS mode with a support address.
pub fn desk(state: &AppState) -> Option<SupportDesk> {
    state.saas.as_ref()?;
    let d = &state.config.deployment;
    let address = d.support_address.trim();
    (!address.is_empty()).then(|| SupportDesk {
        address: address.to_ascii_lowercase(),
        default_edition: d.default_edition.clone(),
    })
}

/// Whether `to` is the support address (compared without letter case).
pub fn is_support_address(state: &AppState, to: &str) -> bool {
    desk(state).is_some_and(|d| d.address.eq_ignore_ascii_case(to.trim()))
}

/// Files one received mail; the SMTP reply to give.
pub async fn file(state: &AppState, mail: &Mail) -> Result<Received, String> {
    let Some(desk) = desk(state) else {
        return Err("no support desk".into());
    };
    let incoming = IncomingMail {
        sender: mail.from.clone(),
        subject: mail.subject.clone(),
        body: mail.body.clone(),
        received_at: state.clock.now(),
    };
    state
        .store
        .support_receive(&desk, &incoming)
        .await
        .map_err(|e| e.to_string())
}

/// Sends queued ticket mail until shutdown (SaaS mode with a support address and an
/// e-mail sender; otherwise returns at once, and says why when mail would pile up).
pub async fn run(state: AppState, mut shutdown: watch::Receiver<bool>) {
    let Some(desk) = desk(&state) else {
        return;
    };
    let Some(smtp) = state.config.notify.email.clone() else {
        tracing::warn!(
            "support tickets are filed, but no e-mail sender is configured (notify.email): \
             acknowledgements and replies stay queued until one is"
        );
        return;
    };
    let mailer = match Mailer::new(&smtp, state.config.notify.timeout_ms)
        .and_then(|m| m.with_reply_to(&desk.address))
    {
        Ok(m) => m,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the support desk's e-mail sender");
            return;
        }
    };
    loop {
        if *shutdown.borrow() {
            break;
        }
        if let Err(e) = send_pending(&state, &mailer).await {
            tracing::error!(error = %e, "sending support mail failed; it will be retried");
        }
        tokio::select! {
            _ = tokio::time::sleep(OUTBOX_EVERY) => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// One pass over the outbox: each message is sent once per pass; a failure stays queued
/// with its error for the next pass.
pub async fn send_pending(state: &AppState, mailer: &Mailer) -> Result<usize, String> {
    let pending = state
        .store
        .support_outbox(OUTBOX_BATCH)
        .await
        .map_err(|e| e.to_string())?;
    let mut sent = 0;
    for m in pending {
        let html = format!("<pre>{}</pre>", crate::console::view::escape(&m.body));
        let outcome = mailer
            .send(
                &new_request_id(),
                &m.recipient,
                "",
                &m.subject,
                html,
                m.body.clone(),
            )
            .await
            .map(|_| ())
            .map_err(|e| format!("{e:?}"));
        if outcome.is_ok() {
            sent += 1;
        } else {
            tracing::warn!(message_id = m.message_id, ticket_id = m.ticket_id,
                error = ?outcome, "support mail not sent; will retry");
        }
        state
            .store
            .support_mark_sent(m.message_id, outcome, state.clock.now())
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(sent)
}
