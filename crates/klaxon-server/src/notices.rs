//! Giving the tenant notices the store queued (service-agreement.md §20, SVC-310…316): a
//! SaaS node claims due rows of the notice outbox, writes the in-app notice into the inbox of
//! the owner and every admin, e-mails the owner (and the billing or technical contacts the
//! category calls for) through `notify.email`, texts the owner's verified mobile for the
//! categories sent by SMS through `notify.twilio`, and records every sending with what the
//! server answered (SVC-312). A refused e-mail or SMS is recorded as `failed` and still
//! counts as given that day (SVC-311); the in-app copy is always there.
//!
//! Self-hosted nodes run nothing here.

use std::time::Duration;

use klaxon_notify::smtp::Mailer;
use klaxon_saas::notice::{Category, Channel, Contacts, recipients};
use klaxon_store::{NewNotice, QueuedNotice};
use tokio::sync::watch;

use crate::state::{AppState, new_request_id};

/// How often the outbox is looked at.
const EVERY: Duration = Duration::from_secs(2);
/// Most notices one pass claims.
const BATCH: i64 = 50;
/// How long a claim keeps other nodes off a notice: far longer than sending it takes.
const CLAIM_MS: i64 = 5 * 60_000;
/// The version of the texts of `klaxon_saas::grant::notice_text` and its kind.
const TEMPLATE_VERSION: &str = "1";

/// Gives queued notices until shutdown (SaaS mode only).
pub async fn run(state: AppState, mut shutdown: watch::Receiver<bool>) {
    if state.saas.is_none() {
        return;
    }
    let mailer = match state.config.notify.email.as_ref() {
        None => {
            tracing::warn!(
                "no e-mail sender is configured (notify.email): tenant notices are given in-app \
                 only, and their e-mails are recorded as failed"
            );
            None
        }
        Some(smtp) => match Mailer::new(smtp, state.config.notify.timeout_ms) {
            Ok(m) => Some(m),
            Err(e) => {
                tracing::error!(error = %e, "cannot build the e-mail sender of tenant notices");
                None
            }
        },
    };
    loop {
        if *shutdown.borrow() {
            break;
        }
        if let Err(e) = give_due(&state, mailer.as_ref()).await {
            tracing::error!(error = %e, "giving tenant notices failed; they will be retried");
        }
        tokio::select! {
            _ = tokio::time::sleep(EVERY) => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// One pass: every due notice is claimed, sent and recorded. Returns how many were given.
pub async fn give_due(state: &AppState, mailer: Option<&Mailer>) -> Result<usize, String> {
    let Some(saas) = state.saas.as_ref() else {
        return Ok(0);
    };
    let due = state
        .store
        .saas_notice_outbox_claim(state.clock.now(), BATCH, CLAIM_MS)
        .await
        .map_err(|e| e.to_string())?;
    let mut given = 0;
    for q in due {
        let records = send(state, mailer, &q).await?;
        state
            .store
            .saas_notice_outbox_deliver(q.outbox_id, &saas.settings.billing_tz, &records)
            .await
            .map_err(|e| e.to_string())?;
        given += 1;
    }
    Ok(given)
}

/// The login identifier a dormancy notice is about (`dormant_login:<login>:<noticed_at>`).
fn dormant_login(q: &QueuedNotice) -> Option<&str> {
    if q.category != Category::DormantLogin {
        return None;
    }
    q.related
        .strip_prefix("dormant_login:")
        .and_then(|rest| rest.rsplit_once(':'))
        .map(|(login, _)| login)
        .filter(|login| !login.is_empty())
}

/// Sends one notice to its recipients as known now (SVC-313) and returns the records.
async fn send(
    state: &AppState,
    mailer: Option<&Mailer>,
    q: &QueuedNotice,
) -> Result<Vec<NewNotice>, String> {
    let contacts = match dormant_login(q) {
        // SVC-009: a dormancy notice is the person's, not the tenant's: it goes to the
        // login identifier itself, an e-mail address or a mobile number.
        Some(login) if login.contains('@') => Contacts {
            owner: Some((0, login.to_string())),
            ..Contacts::default()
        },
        Some(login) => Contacts {
            owner_phone: Some(login.to_string()),
            ..Contacts::default()
        },
        None => state
            .store
            .saas_contacts(q.account_id)
            .await
            .map_err(|e| e.to_string())?,
    };
    let base = NewNotice {
        account_id: q.account_id,
        member_id: 0,
        category: q.category,
        template_id: q.template_id.clone(),
        template_version: TEMPLATE_VERSION.into(),
        language: "en".into(),
        subject: q.subject.clone(),
        content: q.content.clone(),
        channel: Channel::InApp,
        recipient: String::new(),
        sent_at: state.clock.now(),
        provider_message_id: String::new(),
        status: "sent".into(),
        status_detail: String::new(),
        related: q.related.clone(),
    };
    let mut out = Vec::new();
    for r in recipients(q.category, &contacts) {
        match r.channel {
            Channel::InApp => out.push(NewNotice {
                member_id: r.member_id,
                recipient: r.address,
                ..base.clone()
            }),
            Channel::Email => {
                let sent = match mailer {
                    None => Err("no e-mail sender is configured (notify.email)".to_string()),
                    Some(m) => {
                        let html =
                            format!("<pre>{}</pre>", crate::console::view::escape(&q.content));
                        m.send(
                            &new_request_id(),
                            &r.address,
                            "",
                            &q.subject,
                            html,
                            q.content.clone(),
                        )
                        .await
                        .map_err(|e| format!("{e:?}"))
                    }
                };
                out.push(sending(&base, Channel::Email, r.address, state, sent));
            }
            Channel::Sms => {
                let sent = match state.config.notify.twilio.as_ref() {
                    None => Err("no SMS provider is configured (notify.twilio)".to_string()),
                    Some(cfg) => {
                        let text = format!("{}: {}", q.subject, q.content);
                        state
                            .im_http
                            .sms(cfg, &new_request_id(), &r.address, &text)
                            .await
                            .map_err(|e| format!("{e:?}"))
                    }
                };
                out.push(sending(&base, Channel::Sms, r.address, state, sent));
            }
            // Announcements and post are not sent from here (`recipients` names none).
            Channel::Announcement | Channel::Postal => {}
        }
    }
    Ok(out)
}

/// The record of one sending to an address (SVC-312): the provider's message id, or
/// `failed` with why. SVC-311: the notice is given when it is sent, whatever happened.
fn sending(
    base: &NewNotice,
    channel: Channel,
    recipient: String,
    state: &AppState,
    sent: Result<String, String>,
) -> NewNotice {
    let (status, detail, message_id) = match sent {
        Ok(id) => ("sent", String::new(), id),
        Err(why) => ("failed", why, String::new()),
    };
    NewNotice {
        channel,
        recipient,
        sent_at: state.clock.now(),
        provider_message_id: message_id,
        status: status.into(),
        status_detail: detail,
        ..base.clone()
    }
}
