//! RSP-312: the IM cards already sent for an incident follow its changes. The store queues a
//! `card_refresh` outbox row with every change of progress, assignment, snooze or severity
//! of an incident that has cards out (`klaxon_store::CARD_REFRESH`), whatever made the change.
//! Sending that row, here, re-renders the incident as it is now and updates every card on
//! every platform: Slack (`chat.update`), Feishu/Lark (patch), DingTalk (`PUT` by track id),
//! WeCom (with an unused response code, RSP-313) and Teams (the activity update).
//!
//! A card press answers its own card at once (the platforms expect that in the reply); the
//! other cards, on the same platform and on the others, are this row's job, so a press and a
//! console click update the same cards the same way.
//!
//! Best effort per card: a card that cannot be reached any more (its message deleted, its
//! integration gone or unlinked) is logged and skipped. A network or rate-limit failure makes
//! the row retry with back-off; the retry re-renders the then-current state.

use klaxon_core::model::{Incident, Millis};
use klaxon_core::template::Channel;
use klaxon_store::{
    CARD_CHANNELS, DeliveryState, ImIntegration, PendingDelivery, Store, StoreError,
};

use crate::card::Card;
use crate::providers::{HttpProviders, SendError};

/// What a card says was just done (RSP-312), as a press's answer and the refresh both say it:
/// "Acknowledged by Ann", "Closed" (by the system), "Snoozed for 2 hours by Ann". Other
/// changes say nothing: the card's state line shows them.
pub fn action_note(kind: &str, snooze_minutes: Option<i64>, by: &str) -> String {
    let done = match kind {
        "i_ack" => "Acknowledged",
        "i_rslv" => "Closed",
        "i_snooze" => "Snoozed",
        _ => return String::new(),
    };
    let by = if by.is_empty() {
        String::new()
    } else {
        format!(" by {by}")
    };
    match snooze_minutes {
        Some(m) if kind == "i_snooze" => format!("{done} for {} hours{by}", m / 60),
        _ => format!("{done}{by}"),
    }
}

/// The incident's card for `channel` as it is at `now`, with `note`; `None` (logged) when the
/// incident is gone or the card cannot be rendered.
pub async fn current_card(
    store: &Store,
    base_url: &str,
    account_id: i64,
    incident_id: &str,
    note: &str,
    channel: Channel,
    now: Millis,
) -> Option<(Incident, Card)> {
    let inc = match store.incident(account_id, incident_id).await {
        Ok(Some(inc)) => inc,
        Ok(None) => return None,
        Err(e) => {
            tracing::warn!(error = %e, "cannot reload the incident for its card");
            return None;
        }
    };
    match crate::templating::card_now(store, &inc, base_url, note, now, channel).await {
        Ok(card) => Some((inc, card)),
        Err(e) => {
            tracing::warn!(error = %e, "cannot render the card");
            None
        }
    }
}

/// Where the card platforms' APIs are (tests point them at local fakes).
pub struct Apis<'a> {
    pub slack_api_base: &'a str,
    pub teams_login_base: &'a str,
}

/// Sends one `card_refresh` row: every card of the incident shows its current state. Ok when
/// every reachable card was updated or is out of reach for good; a transient failure of any
/// card retries the row.
pub async fn refresh(
    store: &Store,
    http: &HttpProviders,
    apis: &Apis<'_>,
    base_url: &str,
    d: &PendingDelivery,
    now: Millis,
) -> Result<String, SendError> {
    let store_err = |e: StoreError| SendError::Transient(format!("store: {e}"));
    let note = note_of(store, d).await.map_err(store_err)?;
    let sent = store
        .delivery_states(d.account_id, &d.incident_id)
        .await
        .map_err(store_err)?;
    let mut retry: Vec<String> = Vec::new();
    let mut updated = 0usize;
    for channel in CARD_CHANNELS {
        let rows: Vec<&DeliveryState> = sent
            .iter()
            .filter(|s| s.channel == channel && s.status == "sent")
            .filter(|s| !s.provider_message_id.is_empty())
            .collect();
        // WeCom's cards are kept with their response codes (RSP-313), not only as rows.
        if rows.is_empty() && channel != "wecom_app" {
            continue;
        }
        let Some(template) = Channel::from_key(channel) else {
            continue;
        };
        let Some((_, card)) = current_card(
            store,
            base_url,
            d.account_id,
            &d.incident_id,
            &note,
            template,
            now,
        )
        .await
        else {
            return Err(SendError::Permanent(
                "provider_error:the incident no longer exists or cannot be rendered".into(),
            ));
        };
        let results = match channel {
            "slack_app" => slack(store, http, apis, d.account_id, &rows, &card).await,
            "feishu_app" => feishu(store, http, d.account_id, &rows, &card, now).await,
            "dingtalk_app" => dingtalk(store, http, d.account_id, &rows, &card, now).await,
            "wecom_app" => wecom(store, http, d, &card, now).await,
            "teams_app" => teams(store, http, apis, d.account_id, &rows, &card, now).await,
            _ => Vec::new(),
        };
        for r in results {
            match r {
                Ok(()) => updated += 1,
                Err(SendError::Permanent(why)) => {
                    tracing::info!(rid = %d.rid, %channel, %why, "a card cannot be updated any more");
                }
                Err(SendError::Transient(why) | SendError::RateLimited(why)) => {
                    tracing::warn!(rid = %d.rid, %channel, %why, "updating a card failed; retried");
                    retry.push(format!("{channel}: {why}"));
                }
            }
        }
    }
    if !retry.is_empty() {
        return Err(SendError::Transient(retry.join("; ")));
    }
    Ok(format!("cards:{updated}"))
}

/// The note of the row's last change that has one, named after who made it.
async fn note_of(store: &Store, d: &PendingDelivery) -> Result<String, StoreError> {
    let Some(event) = d.target["events"]
        .as_array()
        .into_iter()
        .flatten()
        .rev()
        .find(|e| !action_note(e["type"].as_str().unwrap_or(""), None, "").is_empty())
    else {
        return Ok(String::new());
    };
    let creator = event["creator_id"].as_i64().unwrap_or(0);
    let name = if creator > 0 {
        store
            .member_contacts(d.account_id, &[creator])
            .await?
            .into_iter()
            .next()
            .map(|c| c.name)
            .unwrap_or_default()
    } else {
        String::new()
    };
    Ok(action_note(
        event["type"].as_str().unwrap_or(""),
        event["detail"]["minutes"].as_i64(),
        &name,
    ))
}

/// The integration that reaches the cards of one delivery row now, of platform `kind`: for a
/// direct message the integration that links the recipient (the one their preference picked,
/// if it did); for a group card the integration the chat names, while it is still enabled.
/// `None` when the card cannot be reached any more.
async fn reaching(
    store: &Store,
    account_id: i64,
    kind: &str,
    row: &DeliveryState,
) -> Option<ImIntegration> {
    if row.person_id != 0 {
        let pick = (row.chat_integration_id > 0).then_some(row.chat_integration_id);
        match store
            .im_target_on(account_id, kind, row.person_id, pick)
            .await
        {
            Ok(Some((integration, _))) => Some(integration),
            _ => None,
        }
    } else {
        match store
            .im_integration(account_id, row.chat_integration_id)
            .await
        {
            Ok(Some(i)) if i.kind == kind && i.status == "enabled" => Some(i),
            _ => None,
        }
    }
}

/// Every card reference of the rows (a group row posted one card per chat, their references
/// separated by spaces) with the integration that reaches it.
async fn cards_of(
    store: &Store,
    account_id: i64,
    kind: &str,
    rows: &[&DeliveryState],
) -> Vec<(ImIntegration, String)> {
    let mut out = Vec::new();
    for row in rows {
        let Some(integration) = reaching(store, account_id, kind, row).await else {
            continue;
        };
        for reference in row.provider_message_id.split_whitespace() {
            out.push((integration.clone(), reference.to_string()));
        }
    }
    out
}

async fn slack(
    store: &Store,
    http: &HttpProviders,
    apis: &Apis<'_>,
    account_id: i64,
    rows: &[&DeliveryState],
    card: &Card,
) -> Vec<Result<(), SendError>> {
    let message = crate::slack::message(card);
    let mut out = Vec::new();
    for (integration, reference) in cards_of(store, account_id, "slack", rows).await {
        out.push(
            http.slack_update_message(
                apis.slack_api_base,
                &integration.bot_token,
                &reference,
                &message,
            )
            .await
            .map(|_| ()),
        );
    }
    out
}

async fn feishu(
    store: &Store,
    http: &HttpProviders,
    account_id: i64,
    rows: &[&DeliveryState],
    card: &Card,
    now: Millis,
) -> Vec<Result<(), SendError>> {
    let body = crate::feishu::card(card);
    let mut out = Vec::new();
    for (integration, message_id) in cards_of(store, account_id, "feishu", rows).await {
        out.push(
            http.feishu_update_card(&integration, &message_id, &body, now)
                .await,
        );
    }
    out
}

async fn dingtalk(
    store: &Store,
    http: &HttpProviders,
    account_id: i64,
    rows: &[&DeliveryState],
    card: &Card,
    now: Millis,
) -> Vec<Result<(), SendError>> {
    let layout = crate::dingtalk::card_layout(card, &[]);
    let mut out = Vec::new();
    for (integration, track) in cards_of(store, account_id, "dingtalk", rows).await {
        out.push(
            http.dingtalk_update_card(&integration, &track, &layout, now)
                .await,
        );
    }
    out
}

/// WeCom: each card can be updated once per interaction, within 72 hours (RSP-313). A card
/// without an unused code is skipped: it shows Refresh, and its buttons still work.
async fn wecom(
    store: &Store,
    http: &HttpProviders,
    d: &PendingDelivery,
    card: &Card,
    now: Millis,
) -> Vec<Result<(), SendError>> {
    let cards = match store.im_cards(d.account_id, &d.incident_id).await {
        Ok(c) => c,
        Err(e) => return vec![Err(SendError::Transient(format!("store: {e}")))],
    };
    let mut out = Vec::new();
    for c in cards {
        let integration = match store.im_integration(d.account_id, c.integration_id).await {
            Ok(Some(i)) if i.kind == "wecom" && i.status == "enabled" => i,
            Ok(_) => continue,
            Err(e) => {
                out.push(Err(SendError::Transient(format!("store: {e}"))));
                continue;
            }
        };
        let code = match store
            .take_im_card_code(d.account_id, c.integration_id, &c.task_id, now)
            .await
        {
            Ok(Some(code)) => code,
            Ok(None) => continue,
            Err(e) => {
                out.push(Err(SendError::Transient(format!("store: {e}"))));
                continue;
            }
        };
        let body = crate::wecom::card(card, &c.task_id, true);
        out.push(
            http.wecom_update_card(&integration, &c.im_user_id, &code, &body, now)
                .await,
        );
    }
    out
}

/// Teams: a card is `conversation|activity`; the conversation says which integration and
/// service URL reach it.
async fn teams(
    store: &Store,
    http: &HttpProviders,
    apis: &Apis<'_>,
    account_id: i64,
    rows: &[&DeliveryState],
    card: &Card,
    now: Millis,
) -> Vec<Result<(), SendError>> {
    let integrations = match store.list_im_integrations(account_id, Some("teams")).await {
        Ok(i) => i,
        Err(e) => return vec![Err(SendError::Transient(format!("store: {e}")))],
    };
    let body = crate::teams::activity(&crate::teams::card(card, &[]));
    let mut out = Vec::new();
    for target in rows
        .iter()
        .flat_map(|r| r.provider_message_id.split_whitespace())
    {
        let Some((conversation, activity)) = target.split_once('|') else {
            continue;
        };
        if conversation.is_empty() || activity.is_empty() {
            continue;
        }
        for integration in integrations.iter().filter(|i| i.status == "enabled") {
            let Ok(Some(conv)) = store
                .im_conversation(account_id, integration.integration_id, conversation)
                .await
            else {
                continue;
            };
            out.push(
                http.teams_update(
                    integration,
                    apis.teams_login_base,
                    &conv.service_url,
                    conversation,
                    activity,
                    &body,
                    now,
                )
                .await,
            );
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_say_what_was_done_and_by_whom() {
        // spec: RSP-312
        assert_eq!(action_note("i_ack", None, "Ann"), "Acknowledged by Ann");
        assert_eq!(action_note("i_rslv", None, ""), "Closed");
        assert_eq!(
            action_note("i_snooze", Some(120), "Bo"),
            "Snoozed for 2 hours by Bo"
        );
        assert_eq!(action_note("i_assign", None, "Ann"), "");
    }
}
