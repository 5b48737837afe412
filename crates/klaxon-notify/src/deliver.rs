//! The delivery engine (hop 3 of DESIGN.md): claims due outbox rows, sends each through its
//! provider and writes the result back.
//!
//! - **At least once.** A row is claimed under a lease (`DELIVERY_CLAIM_MS`) and its result is
//!   written only while the claim holds. A node that dies between sending and writing leaves
//!   the row queued; once the lease expires another node sends it again, with the same `rid`
//!   as idempotency key (`Idempotency-Key` header, e-mail `Message-ID`).
//! - **Retries.** A transient error (network, timeout, 5xx, 429, vendor rate limit, SMTP 4xx)
//!   puts the row back with `next_attempt_at` = now + exponential back-off with jitter; after
//!   `notify.max_attempts` attempts it fails with `provider_error:<last error>`. A permanent
//!   error (a refusal of this very message, a missing contact) fails it at once. Pending
//!   retries are rows, never in-memory tasks, so a restart loses nothing.
//! - **Exactly once per attempt that succeeded** as far as this node can know: a row that was
//!   sent is never claimed again.

use std::collections::HashMap;
use std::sync::Arc;

use klaxon_core::model::Millis;
use klaxon_store::{DeliveryOutcome, MemberContact, PendingDelivery, Store, StoreError};
use rand::Rng;
use serde_json::Value;

use crate::config::NotifyConfig;
use crate::contact::{self, Recipient};
use crate::phone;
use crate::providers::{CallLinks, HttpProviders, Mention, SendError};
use crate::reminder::ReminderMessage;
use crate::render::{self, Message};
use crate::retry::{self, Next};
use crate::smtp::Mailer;
use crate::templating;
use klaxon_core::template::{Channel as TemplateChannel, Outcome as TemplateOutcome};

/// RSP-292: a send the platform's quota still refuses this long after the decision fails
/// with `rate_limited`.
pub const RATE_LIMIT_WINDOW_MS: Millis = 60_000;

/// How long a one-click action link in a notification acts (docs/notifications.md): a day,
/// like an SMS reply code, long enough for a page read in the morning.
pub const ACTION_LINK_TTL_MS: Millis = 24 * 3_600_000;

/// What one round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Round {
    pub claimed: usize,
    pub sent: usize,
    pub failed: usize,
    pub retried: usize,
    /// Results not written because the claim had been lost meanwhile.
    pub lost: usize,
}

/// The delivery engine of one node; cheap to clone.
#[derive(Clone)]
pub struct Deliverer {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    config: NotifyConfig,
    base_url: String,
    holder: String,
    http: HttpProviders,
    /// The e-mail providers in failover order (RSP-291).
    mailers: Vec<Mailer>,
    /// SaaS mode: the billing settings and communication prices each metered row's unit is
    /// decided against before it is sent (SVC-072/074); `None` self-hosted.
    meter: Option<(klaxon_store::SaasSettings, klaxon_store::CommPlan)>,
}

impl Deliverer {
    /// `base_url` is the console's public URL (links in messages); `holder` names this node's
    /// claims and must differ between nodes.
    pub fn new(
        store: Store,
        config: NotifyConfig,
        base_url: &str,
        holder: &str,
    ) -> Result<Deliverer, String> {
        config.validate()?;
        let http = HttpProviders::new(config.timeout_ms, config.allow_private_targets)?;
        let mailers = [&config.email, &config.email_backup]
            .into_iter()
            .flatten()
            .map(|cfg| Mailer::new(cfg, config.timeout_ms))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Deliverer {
            inner: Arc::new(Inner {
                store,
                base_url: base_url.trim_end_matches('/').to_string(),
                holder: holder.to_string(),
                http,
                mailers,
                config,
                meter: None,
            }),
        })
    }

    /// SaaS mode: decide each metered row's unit (allowance, pack, funded overage) before
    /// sending it, and skip it with `quota_exhausted` when nothing covers it (SVC-072/074).
    /// Call right after [`Deliverer::new`].
    pub fn with_metering(
        mut self,
        settings: klaxon_store::SaasSettings,
        plan: klaxon_store::CommPlan,
    ) -> Deliverer {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.meter = Some((settings, plan));
        }
        self
    }

    pub fn holder(&self) -> &str {
        &self.inner.holder
    }

    /// Claims up to `notify.concurrency` due rows and delivers them concurrently.
    pub async fn run_once(&self, now: Millis) -> Result<Round, StoreError> {
        let limit = i64::try_from(self.inner.config.concurrency).unwrap_or(8);
        let claimed = self
            .inner
            .store
            .claim_deliveries(&self.inner.holder, now, limit)
            .await?;
        self.deliver_claimed(claimed, now).await
    }

    /// Runs rounds at `now` until no row is due; returns the sum.
    pub async fn drain(&self, now: Millis) -> Result<Round, StoreError> {
        let mut total = Round::default();
        loop {
            let r = self.run_once(now).await?;
            if r.claimed == 0 {
                return Ok(total);
            }
            total.claimed += r.claimed;
            total.sent += r.sent;
            total.failed += r.failed;
            total.retried += r.retried;
            total.lost += r.lost;
        }
    }

    /// Delivers rows this node has claimed.
    pub async fn deliver_claimed(
        &self,
        claimed: Vec<PendingDelivery>,
        now: Millis,
    ) -> Result<Round, StoreError> {
        let mut round = Round {
            claimed: claimed.len(),
            ..Round::default()
        };
        let mut tasks = tokio::task::JoinSet::new();
        for d in claimed {
            let this = self.clone();
            tasks.spawn(async move { this.deliver_one(d, now).await });
        }
        let mut first_error = None;
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok(Ok(Step::Sent)) => round.sent += 1,
                Ok(Ok(Step::Failed)) => round.failed += 1,
                Ok(Ok(Step::Retry)) => round.retried += 1,
                Ok(Ok(Step::Lost)) => round.lost += 1,
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "recording a delivery failed; the row will be retried after its lease");
                    first_error.get_or_insert(e);
                }
                Err(e) => tracing::error!(error = %e, "a delivery task failed"),
            }
        }
        match first_error {
            Some(e) if round.sent + round.failed + round.retried + round.lost == 0 => Err(e),
            _ => Ok(round),
        }
    }

    async fn deliver_one(&self, d: PendingDelivery, now: Millis) -> Result<Step, StoreError> {
        let inner = &self.inner;
        // SVC-072/074: a metered unit needs allowance, a pack or funds before it is sent.
        let mut metered = false;
        if let Some((settings, plan)) = &inner.meter {
            match inner
                .store
                .saas_meter_unit(settings, plan, d.account_id, d.seq, &d.channel, now)
                .await
            {
                Ok(klaxon_store::MeterDecision::Skipped(why)) => {
                    tracing::info!(rid = %d.rid, channel = %d.channel, %why,
                        "notification skipped: no allowance, pack or funds");
                    let ok = inner
                        .store
                        .finish_delivery(
                            &inner.holder,
                            d.seq,
                            &DeliveryOutcome::Failed {
                                reason: "quota_exhausted".into(),
                            },
                            now,
                        )
                        .await?;
                    if !ok {
                        metrics::counter!("klaxon_notify_claims_lost_total").increment(1);
                        return Ok(Step::Lost);
                    }
                    metrics::counter!("klaxon_notifications_total", "channel" => d.channel.clone(),
                        "outcome" => Step::Failed.as_str())
                    .increment(1);
                    return Ok(Step::Failed);
                }
                Ok(klaxon_store::MeterDecision::NotMetered) => {}
                Ok(_) => metered = true,
                Err(e) => {
                    // Nothing was decided: the row waits and is tried again.
                    tracing::error!(rid = %d.rid, error = %e, "metering the unit failed; will retry");
                    let at = now + i64::try_from(inner.config.retry_base_ms).unwrap_or(1_000);
                    let ok = inner
                        .store
                        .retry_delivery(&inner.holder, d.seq, &format!("metering:{e}"), at, now)
                        .await?;
                    return Ok(if ok { Step::Retry } else { Step::Lost });
                }
            }
        }
        let (account_id, seq, rid) = (d.account_id, d.seq, d.rid.clone());
        let step = self.deliver_metered(d, now).await;
        // SVC-070: a unit the provider refused (or the platform gave up on) never counts.
        if metered
            && matches!(step, Ok(Step::Failed))
            && let Err(e) = inner.store.saas_unit_not_sent(account_id, seq).await
        {
            tracing::error!(%rid, error = %e, "giving back the unit of a failed send failed");
        }
        step
    }

    async fn deliver_metered(&self, d: PendingDelivery, now: Millis) -> Result<Step, StoreError> {
        let inner = &self.inner;
        let started = std::time::Instant::now();
        let result = self.attempt(&d, now).await;
        metrics::histogram!("klaxon_notify_attempt_seconds", "channel" => d.channel.clone())
            .record(started.elapsed().as_secs_f64());
        let attempts = u32::try_from(d.attempts.saturating_add(1)).unwrap_or(u32::MAX);
        let (step, written) = match result {
            Ok(provider_message_id) => {
                let ok = inner
                    .store
                    .finish_delivery(
                        &inner.holder,
                        d.seq,
                        &DeliveryOutcome::Sent {
                            provider_message_id,
                        },
                        now,
                    )
                    .await?;
                if ok {
                    metrics::histogram!("klaxon_notify_delay_seconds")
                        .record(now.saturating_sub(d.created_at).max(0) as f64 / 1000.0);
                }
                (Step::Sent, ok)
            }
            Err(SendError::Permanent(reason)) => {
                tracing::info!(rid = %d.rid, channel = %d.channel, %reason, "notification failed");
                let ok = inner
                    .store
                    .finish_delivery(
                        &inner.holder,
                        d.seq,
                        &DeliveryOutcome::Failed { reason },
                        now,
                    )
                    .await?;
                (Step::Failed, ok)
            }
            Err(e @ (SendError::Transient(_) | SendError::RateLimited(_))) => {
                // The last error shows while the row waits; the final reason is the provider's
                // error, or `rate_limited` once a quota refusal outlasts RSP-292's 60 s.
                let (text, final_reason, window_over) = match e {
                    SendError::RateLimited(t) => {
                        let over = now.saturating_sub(d.created_at) >= RATE_LIMIT_WINDOW_MS;
                        (t, "rate_limited".to_string(), over)
                    }
                    SendError::Transient(t) | SendError::Permanent(t) => {
                        let reason = format!("provider_error:{t}");
                        (t, reason, false)
                    }
                };
                let c = &inner.config;
                let jitter: f64 = rand::rng().random();
                let next = if window_over {
                    Next::GiveUp
                } else {
                    retry::after_failure(
                        attempts,
                        c.max_attempts,
                        now,
                        c.retry_base_ms,
                        c.retry_max_ms,
                        jitter,
                    )
                };
                match next {
                    Next::RetryAt(at) => {
                        tracing::warn!(rid = %d.rid, channel = %d.channel, attempt = attempts,
                            error = %text, retry_in_ms = at - now, "notification attempt failed; will retry");
                        let last = format!("provider_error:{text}");
                        let ok = inner
                            .store
                            .retry_delivery(&inner.holder, d.seq, &last, at, now)
                            .await?;
                        (Step::Retry, ok)
                    }
                    Next::GiveUp => {
                        tracing::warn!(rid = %d.rid, channel = %d.channel, attempt = attempts,
                            error = %text, "notification failed after its last attempt");
                        let ok = inner
                            .store
                            .finish_delivery(
                                &inner.holder,
                                d.seq,
                                &DeliveryOutcome::Failed {
                                    reason: final_reason,
                                },
                                now,
                            )
                            .await?;
                        (Step::Failed, ok)
                    }
                }
            }
        };
        if !written {
            metrics::counter!("klaxon_notify_claims_lost_total").increment(1);
            return Ok(Step::Lost);
        }
        metrics::counter!("klaxon_notifications_total", "channel" => d.channel.clone(),
            "outcome" => step.as_str())
        .increment(1);
        Ok(step)
    }

    /// One send attempt. Ok = the provider accepted it (with its message id, or "").
    async fn attempt(&self, d: &PendingDelivery, now: Millis) -> Result<String, SendError> {
        if d.fire_type == klaxon_store::SHIFT_REMINDER {
            return self.reminder(d, now).await;
        }
        let inner = &self.inner;
        if d.fire_type == klaxon_store::WAR_ROOM_SYNC {
            // RSP-433 / RSP-434: war-room sync rides the outbox for its retries and claims.
            return crate::war_room::sync(
                &inner.store,
                &inner.http,
                &inner.config.slack_api_base,
                &inner.base_url,
                d,
                now,
            )
            .await;
        }
        if d.fire_type == klaxon_store::CARD_REFRESH {
            // RSP-312: the incident's cards follow a change, whatever made it.
            let apis = crate::card_refresh::Apis {
                slack_api_base: &inner.config.slack_api_base,
                teams_login_base: &inner.config.teams_login_base,
            };
            return crate::card_refresh::refresh(
                &inner.store,
                &inner.http,
                &apis,
                &inner.base_url,
                d,
                now,
            )
            .await;
        }
        let store_err = |e: StoreError| SendError::Transient(format!("store: {e}"));
        let Some(inc) = inner
            .store
            .incident(d.account_id, &d.incident_id)
            .await
            .map_err(store_err)?
        else {
            return Err(SendError::Permanent(
                "provider_error:the incident no longer exists".into(),
            ));
        };
        let channel_name = if inc.channel_id == 0 {
            "None".to_string()
        } else {
            inner
                .store
                .channel_name(d.account_id, inc.channel_id)
                .await
                .map_err(store_err)?
                .unwrap_or_else(|| "None".to_string())
        };
        let mention_ids: Vec<i64> = d
            .target
            .get("mentions")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_i64).collect())
            .unwrap_or_default();
        let assigned: Vec<i64> = inc
            .response
            .assigned_to
            .as_ref()
            .map(|a| a.person_ids.clone())
            .unwrap_or_default();
        let mut ids: Vec<i64> = mention_ids.iter().chain(&assigned).copied().collect();
        if d.person_id != 0 {
            ids.push(d.person_id);
        }
        // Templates also read the responders, creator and closer (RSP-343).
        ids.extend(inc.response.responders.iter().map(|r| r.person_id));
        ids.extend(
            [inc.creator_id, inc.closer_id]
                .into_iter()
                .filter(|i| *i != 0),
        );
        ids.sort_unstable();
        ids.dedup();
        let contacts: HashMap<i64, MemberContact> = inner
            .store
            .member_contacts(d.account_id, &ids)
            .await
            .map_err(store_err)?
            .into_iter()
            .map(|c| (c.member_id, c))
            .collect();
        // Responders shown in messages: the assigned persons who are still active.
        let name = |id: &i64| {
            contacts
                .get(id)
                .filter(|c| c.status == "enabled")
                .map(|c| c.name.clone())
        };
        let assign_type = inc
            .response
            .assigned_to
            .as_ref()
            .map_or("assign", |a| a.kind.as_str());
        let msg = Message {
            incident_id: inc.incident_id.clone(),
            num: inc.num.clone(),
            title: inc.title.clone(),
            description: inc.description.clone(),
            severity: inc.incident_severity.as_str().to_string(),
            channel_name,
            fire_reason: render::fire_reason(&d.reason, d.repeat_index, assign_type),
            start_time: inc.start_time,
            alert_cnt: inc.alert_cnt,
            responders: assigned.iter().filter_map(name).collect(),
            detail_url: format!("{}/incident/detail/{}", inner.base_url, inc.incident_id),
        };
        if d.person_id != 0 && d.channel == "slack_app" {
            return self.slack_dm(d, &inc, &contacts, &msg, now).await;
        }
        if d.person_id != 0 && d.channel == "feishu_app" {
            return self.feishu_dm(d, &inc, &contacts, &msg, now).await;
        }
        if d.person_id != 0 && d.channel == "wecom_app" {
            return self.wecom_dm(d, &inc, &contacts, &msg, now).await;
        }
        if d.person_id != 0 && d.channel == "dingtalk_app" {
            return self.dingtalk_dm(d, &inc, &contacts, &msg, now).await;
        }
        if d.person_id != 0 && d.channel == "teams_app" {
            return self.teams_dm(d, &inc, &contacts, &msg, now).await;
        }
        if d.person_id != 0 && d.channel == "app" {
            return self.app_push(d, &contacts, &msg, now).await;
        }
        if d.person_id != 0 {
            let recipient = contact::resolve(&d.channel, contacts.get(&d.person_id))
                .map_err(SendError::Permanent)?;
            // An e-mail carries a one-click link that acts as its recipient.
            let action_url = if d.channel == "email" {
                Some(self.action_link(d, now).await?)
            } else {
                None
            };
            let body = self
                .templated(d, &inc, &contacts, action_url.as_deref(), now)
                .await?;
            return self
                .direct(
                    d,
                    &recipient,
                    &msg,
                    body.as_ref(),
                    action_url.as_deref(),
                    now,
                )
                .await;
        }
        if d.channel == "slack_app" {
            let integration = self.chat_integration(d, "slack").await?;
            let mentions = self
                .im_mentions(
                    d,
                    &integration,
                    &mention_ids,
                    &contacts,
                    crate::slack::mention,
                )
                .await?;
            let card = self.im_card(d, &inc, &contacts, &msg, now).await?;
            let message = crate::slack::chat_message(&card, &mentions);
            return self.slack_chats(d, &integration, &message).await;
        }
        if d.channel == "feishu_app" {
            let integration = self.chat_integration(d, "feishu").await?;
            let mentions = self
                .im_mentions(
                    d,
                    &integration,
                    &mention_ids,
                    &contacts,
                    crate::feishu::mention,
                )
                .await?;
            let card = self.im_card(d, &inc, &contacts, &msg, now).await?;
            let card = crate::feishu::chat_card(&card, &mentions);
            return self.feishu_chats(d, &integration, &card, now).await;
        }
        if d.channel == "dingtalk_app" {
            let integration = self.chat_integration(d, "dingtalk").await?;
            // Responders are named as text: the standard card has no mention element.
            let mentions = self
                .im_mentions(d, &integration, &mention_ids, &contacts, |_, name| {
                    format!("@{name}")
                })
                .await?;
            let card = self.im_card(d, &inc, &contacts, &msg, now).await?;
            let layout = crate::dingtalk::card_layout(&card, &mentions);
            return self.dingtalk_chats(d, &integration, &layout, now).await;
        }
        if d.channel == "teams_app" {
            let integration = self.chat_integration(d, "teams").await?;
            let mentions = self
                .im_mentioned(d, &integration, &mention_ids, &contacts)
                .await?
                .into_iter()
                .map(|(user_id, name)| crate::teams::Mention { user_id, name })
                .collect::<Vec<_>>();
            let card = self.im_card(d, &inc, &contacts, &msg, now).await?;
            let activity = crate::teams::activity(&crate::teams::card(&card, &mentions));
            return self.teams_chats(d, &integration, &activity, now).await;
        }
        if d.channel.ends_with("_app") {
            // Only the Slack, Feishu, DingTalk and Teams apps post to chats among the IM app
            // integrations (1.21): nothing can post to the other platforms' chats.
            return Err(SendError::Permanent("provider_error:not_configured".into()));
        }
        let mentions: Vec<Mention> = mention_ids
            .iter()
            .filter_map(|id| contacts.get(id))
            .filter(|c| c.status == "enabled")
            .map(|c| Mention {
                name: c.name.clone(),
                // RSP-289: DingTalk mentions by phone; only a verified one identifies the person.
                phone: if c.phone_verified {
                    c.phone.clone()
                } else {
                    String::new()
                },
            })
            .collect();
        let settings = d.target.get("settings").cloned().unwrap_or(Value::Null);
        if matches!(d.channel.as_str(), "feishu" | "zoom")
            && let Some(body) = self.templated(d, &inc, &contacts, None, now).await?
        {
            // RSP-349, RSP-350: these bots carry the rule's template as their whole body
            // (a Feishu card or rich text, Zoom's message object); responders are named by
            // the template itself.
            return inner
                .http
                .templated_bot(&d.channel, &settings, &d.rid, &body.text, now)
                .await;
        }
        inner
            .http
            .bot(&d.channel, &settings, &d.rid, &msg, &mentions, now)
            .await
    }

    /// A shift reminder (RSP-232): the built-in text, to a member's personal channel or to a
    /// group chat with the recipients @-mentioned.
    async fn reminder(&self, d: &PendingDelivery, now: Millis) -> Result<String, SendError> {
        let inner = &self.inner;
        let store_err = |e: StoreError| SendError::Transient(format!("store: {e}"));
        let Some(msg) = ReminderMessage::from_target(&d.target, &inner.base_url) else {
            return Err(SendError::Permanent(
                "provider_error:unreadable shift reminder".into(),
            ));
        };
        let mention_ids: Vec<i64> = d
            .target
            .get("mentions")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_i64).collect())
            .unwrap_or_default();
        let mut ids = msg.person_ids();
        ids.extend(&mention_ids);
        if d.person_id != 0 {
            ids.push(d.person_id);
        }
        ids.sort_unstable();
        ids.dedup();
        let contacts: HashMap<i64, MemberContact> = inner
            .store
            .member_contacts(d.account_id, &ids)
            .await
            .map_err(store_err)?
            .into_iter()
            .map(|c| (c.member_id, c))
            .collect();
        let (_, locale) = templating::account_zone_and_locale(&inner.store, d.account_id)
            .await
            .map_err(store_err)?;
        let msg = msg.in_locale(&locale).with_names(
            contacts
                .iter()
                .map(|(id, c)| (*id, c.name.clone()))
                .collect(),
        );
        if d.person_id != 0 {
            let recipient = contact::resolve(&d.channel, contacts.get(&d.person_id))
                .map_err(SendError::Permanent)?;
            let mut errors: Vec<SendError> = Vec::new();
            match (d.channel.as_str(), &recipient) {
                ("email", Recipient::Email { address, name }) => {
                    for mailer in &inner.mailers {
                        match mailer
                            .send(
                                &d.rid,
                                address,
                                name,
                                &msg.subject(),
                                msg.html(),
                                msg.text(),
                            )
                            .await
                        {
                            Ok(id) => return Ok(id),
                            Err(e) => errors.push(e),
                        }
                    }
                }
                ("sms", Recipient::Phone { e164 }) => {
                    let accounts = [&inner.config.twilio, &inner.config.twilio_backup];
                    for cfg in accounts.into_iter().flatten().filter(|t| t.sms) {
                        match inner.http.sms(cfg, &d.rid, e164, &msg.sms()).await {
                            Ok(id) => return Ok(id),
                            Err(e) => errors.push(e),
                        }
                    }
                }
                (other, _) => {
                    // Voice is never offered for reminders (OQ-19); app channels need the IM
                    // app integrations.
                    return Err(SendError::Permanent(format!(
                        "provider_error:no provider for {other}"
                    )));
                }
            }
            return Err(all_failed(errors));
        }
        if d.channel == "slack_app" {
            let integration = self.chat_integration(d, "slack").await?;
            let mentions = self
                .im_mentions(
                    d,
                    &integration,
                    &mention_ids,
                    &contacts,
                    crate::slack::mention,
                )
                .await?;
            let message = crate::slack::reminder_message(&msg.text(), &mentions);
            return self.slack_chats(d, &integration, &message).await;
        }
        if d.channel == "feishu_app" {
            let integration = self.chat_integration(d, "feishu").await?;
            let mentions = self
                .im_mentions(
                    d,
                    &integration,
                    &mention_ids,
                    &contacts,
                    crate::feishu::mention,
                )
                .await?;
            let card = crate::feishu::reminder_card(&msg.text(), &mentions);
            return self.feishu_chats(d, &integration, &card, now).await;
        }
        if d.channel.ends_with("_app") {
            return Err(SendError::Permanent("provider_error:not_configured".into()));
        }
        let mentions: Vec<Mention> = mention_ids
            .iter()
            .filter_map(|id| contacts.get(id))
            .filter(|c| c.status == "enabled")
            .map(|c| Mention {
                name: c.name.clone(),
                phone: if c.phone_verified {
                    c.phone.clone()
                } else {
                    String::new()
                },
            })
            .collect();
        let settings = d.target.get("settings").cloned().unwrap_or(Value::Null);
        inner
            .http
            .bot(&d.channel, &settings, &d.rid, &msg, &mentions, now)
            .await
    }

    /// The enabled member `d` is for, and their user on an app of `kind` (RSP-286): through
    /// the integration a preference entry picked (`target.integration_id`, response.md 1.15)
    /// or the first enabled one that links them. `member_inactive`, or `app_not_linked`
    /// (RSP-332: the store queues the RSP-287 fallback with that failure).
    async fn linked_app_user(
        &self,
        d: &PendingDelivery,
        contacts: &HashMap<i64, MemberContact>,
        kind: &str,
    ) -> Result<(klaxon_store::ImIntegration, String), SendError> {
        if contacts
            .get(&d.person_id)
            .is_none_or(|m| m.status != "enabled")
        {
            return Err(SendError::Permanent("member_inactive".into()));
        }
        let pick = d.target.get("integration_id").and_then(Value::as_i64);
        self.inner
            .store
            .im_target_on(d.account_id, kind, d.person_id, pick)
            .await
            .map_err(|e| SendError::Transient(format!("store: {e}")))?
            .ok_or_else(|| SendError::Permanent("app_not_linked".into()))
    }

    /// A Slack app direct message (RSP-286): the card with the rendered `slack_app` template,
    /// posted with `chat.postMessage` to the member's linked Slack user through the first
    /// enabled Slack integration that links them, or through the one the notification names
    /// (`target.integration_id`, from a preference entry). No link: `app_not_linked` (RSP-332), and
    /// the store queues the fallback of RSP-287 with the failure.
    async fn slack_dm(
        &self,
        d: &PendingDelivery,
        inc: &klaxon_core::model::Incident,
        contacts: &HashMap<i64, MemberContact>,
        msg: &Message,
        now: Millis,
    ) -> Result<String, SendError> {
        let inner = &self.inner;
        let (integration, slack_user) = self.linked_app_user(d, contacts, "slack").await?;
        let card = self.im_card(d, inc, contacts, msg, now).await?;
        inner
            .http
            .slack_post_message(
                &inner.config.slack_api_base,
                &integration.bot_token,
                &d.rid,
                &slack_user,
                &crate::slack::message(&card),
            )
            .await
    }

    /// The IM card of an incident as it is now (RSP-286), with the rendered app template of
    /// the row's channel (`slack_app`, `feishu_app`) as its body; the same for a direct
    /// message and a group chat (RSP-288).
    async fn im_card(
        &self,
        d: &PendingDelivery,
        inc: &klaxon_core::model::Incident,
        contacts: &HashMap<i64, MemberContact>,
        msg: &Message,
        now: Millis,
    ) -> Result<crate::card::Card, SendError> {
        let store_err = |e: StoreError| SendError::Transient(format!("store: {e}"));
        let body = self
            .templated(d, inc, contacts, None, now)
            .await?
            .map(|o| o.text)
            .unwrap_or_default();
        let (time_zone, locale) =
            templating::account_zone_and_locale(&self.inner.store, d.account_id)
                .await
                .map_err(store_err)?;
        Ok(crate::card::Card {
            incident_id: inc.incident_id.clone(),
            num: inc.num.clone(),
            title: inc.title.clone(),
            severity: inc.incident_severity.as_str().to_string(),
            progress: progress_name(inc),
            snoozed_before: inc.response.snoozed_before,
            outlier: inc.response.frequency == "rare",
            body,
            detail_url: msg.detail_url.clone(),
            time_zone,
            note: String::new(),
            locale,
        })
    }

    /// The integration of `kind` (`slack`, `feishu`) an IM app chat row names in
    /// `settings.integration_id`. A missing, foreign, other-platform or disabled integration
    /// is a permanent failure: no retry can make the chat reachable.
    async fn chat_integration(
        &self,
        d: &PendingDelivery,
        kind: &str,
    ) -> Result<klaxon_store::ImIntegration, SendError> {
        let store_err = |e: StoreError| SendError::Transient(format!("store: {e}"));
        let settings = d.target.get("settings").unwrap_or(&Value::Null);
        let Some(id) = settings
            .get("integration_id")
            .and_then(Value::as_i64)
            .filter(|id| *id > 0)
        else {
            return Err(SendError::Permanent(
                "provider_error:the chat names no IM integration".into(),
            ));
        };
        let Some(integration) = self
            .inner
            .store
            .im_integration(d.account_id, id)
            .await
            .map_err(store_err)?
        else {
            return Err(SendError::Permanent(format!(
                "provider_error:IM integration {id} does not exist"
            )));
        };
        if integration.kind != kind {
            let platform = match kind {
                "slack" => "Slack",
                "feishu" => "Feishu",
                "dingtalk" => "DingTalk",
                "teams" => "Teams",
                other => other,
            };
            return Err(SendError::Permanent(format!(
                "provider_error:IM integration {id} is a {} integration, not a {platform} one",
                integration.kind
            )));
        }
        if integration.status != "enabled" {
            return Err(SendError::Permanent(format!(
                "provider_error:IM integration {id} is disabled"
            )));
        }
        Ok(integration)
    }

    /// RSP-289: the mentions of an IM app group message, in the order the row lists the
    /// members: the IM user linked on the chat's integration, else the plain name, written
    /// by the platform's `format`. Members who are no longer enabled are left out, as in
    /// every group message.
    async fn im_mentions(
        &self,
        d: &PendingDelivery,
        integration: &klaxon_store::ImIntegration,
        mention_ids: &[i64],
        contacts: &HashMap<i64, MemberContact>,
        format: fn(Option<&str>, &str) -> String,
    ) -> Result<Vec<String>, SendError> {
        Ok(self
            .im_mentioned(d, integration, mention_ids, contacts)
            .await?
            .into_iter()
            .map(|(user_id, name)| format(user_id.as_deref(), &name))
            .collect())
    }

    /// The enabled responders of `mention_ids`, once each in order, with their linked user id
    /// on the integration's platform if they have one (RSP-289).
    async fn im_mentioned(
        &self,
        d: &PendingDelivery,
        integration: &klaxon_store::ImIntegration,
        mention_ids: &[i64],
        contacts: &HashMap<i64, MemberContact>,
    ) -> Result<Vec<(Option<String>, String)>, SendError> {
        let store_err = |e: StoreError| SendError::Transient(format!("store: {e}"));
        let links: HashMap<i64, String> = self
            .inner
            .store
            .im_links(d.account_id, integration.integration_id)
            .await
            .map_err(store_err)?
            .into_iter()
            .map(|l| (l.member_id, l.im_user_id))
            .collect();
        let mut seen = std::collections::HashSet::new();
        Ok(mention_ids
            .iter()
            .filter(|id| seen.insert(**id))
            .filter_map(|id| {
                let c = contacts.get(id).filter(|c| c.status == "enabled")?;
                let user_id = links.get(id).filter(|u| !u.is_empty()).cloned();
                Some((user_id, c.name.clone()))
            })
            .collect())
    }

    /// Posts `message` with `chat.postMessage` to every channel of a `slack_app` chat row
    /// (`settings.chat_ids`) through its integration's bot token. Every chat is tried; the
    /// row is sent when all accepted it, with their `<channel>/<ts>` references joined by
    /// spaces. A chat the app cannot post to any more fails with `chat_unavailable`
    /// (RSP-300). A transient failure of any chat retries the row, which posts to every chat
    /// again: at least once, as for every delivery.
    async fn slack_chats(
        &self,
        d: &PendingDelivery,
        integration: &klaxon_store::ImIntegration,
        message: &Value,
    ) -> Result<String, SendError> {
        let inner = &self.inner;
        let chats = chat_ids(d);
        if chats.is_empty() {
            return Err(SendError::Permanent(
                "provider_error:the chat lists no Slack channel".into(),
            ));
        }
        let mut out = ChatResults::default();
        for chat in chats {
            let r = inner
                .http
                .slack_post_message(
                    &inner.config.slack_api_base,
                    &integration.bot_token,
                    &d.rid,
                    chat,
                    message,
                )
                .await;
            out.add(chat, r);
        }
        out.finish(crate::slack::chat_unavailable)
    }

    /// A Feishu/Lark app direct message (RSP-286): the card with the rendered `feishu_app`
    /// template, sent to the member's linked `open_id` through the first enabled Feishu
    /// integration that links them, or the one a preference entry names. No link:
    /// `app_not_linked` (RSP-281), and the store queues the fallback of RSP-287.
    async fn feishu_dm(
        &self,
        d: &PendingDelivery,
        inc: &klaxon_core::model::Incident,
        contacts: &HashMap<i64, MemberContact>,
        msg: &Message,
        now: Millis,
    ) -> Result<String, SendError> {
        let inner = &self.inner;
        let (integration, open_id) = self.linked_app_user(d, contacts, "feishu").await?;
        let card = self.im_card(d, inc, contacts, msg, now).await?;
        inner
            .http
            .feishu_send_card(
                &integration,
                &d.rid,
                "open_id",
                &open_id,
                &crate::feishu::card(&card),
                now,
            )
            .await
    }

    /// A WeCom app direct message (RSP-286, RSP-311): the button card with the rendered
    /// `wecom_app` template, sent to the member's linked WeCom user id through the first
    /// enabled WeCom integration that links them, or the one a preference entry names. No
    /// link: `app_not_linked`. The card's response code is kept: it is what lets the card be
    /// updated later (RSP-312, RSP-313). The row's message id is the card's `task_id`.
    async fn wecom_dm(
        &self,
        d: &PendingDelivery,
        inc: &klaxon_core::model::Incident,
        contacts: &HashMap<i64, MemberContact>,
        msg: &Message,
        now: Millis,
    ) -> Result<String, SendError> {
        let inner = &self.inner;
        let (integration, user_id) = self.linked_app_user(d, contacts, "wecom").await?;
        let card = self.im_card(d, inc, contacts, msg, now).await?;
        let task_id = crate::wecom::task_id(&d.rid);
        let code = inner
            .http
            .wecom_send_card(
                &integration,
                &user_id,
                &crate::wecom::card(&card, &task_id, false),
                now,
            )
            .await?;
        // The card is out; failing to keep its code only means it cannot be updated.
        if let Err(e) = inner
            .store
            .record_im_card_code(
                d.account_id,
                integration.integration_id,
                &task_id,
                &inc.incident_id,
                &user_id,
                &code,
                now,
            )
            .await
        {
            tracing::warn!(error = %e, rid = %d.rid, "cannot keep the WeCom card's response code");
        }
        Ok(task_id)
    }

    /// A DingTalk app direct message (RSP-286, RSP-311): the card with the rendered
    /// `dingtalk_app` template, sent by the app's robot to the member's linked DingTalk user
    /// through the first enabled DingTalk integration that links them, or the one a
    /// preference entry names. No link: `app_not_linked` (RSP-281), and the store queues the
    /// fallback of RSP-287. The row's message id is the card's `outTrackId`, which later
    /// updates name (RSP-312); a retry sends the same id, so DingTalk keeps one card.
    async fn dingtalk_dm(
        &self,
        d: &PendingDelivery,
        inc: &klaxon_core::model::Incident,
        contacts: &HashMap<i64, MemberContact>,
        msg: &Message,
        now: Millis,
    ) -> Result<String, SendError> {
        let (integration, user_id) = self.linked_app_user(d, contacts, "dingtalk").await?;
        let card = self.im_card(d, inc, contacts, msg, now).await?;
        self.inner
            .http
            .dingtalk_send_card(
                &integration,
                &crate::dingtalk::track_id(&d.rid, None),
                crate::providers::DingtalkTarget::User(&user_id),
                &crate::dingtalk::card_layout(&card, &[]),
                now,
            )
            .await
    }

    /// Sends the card to every group of a `dingtalk_app` chat row (`settings.chat_ids`, the
    /// groups' `openConversationId`), one `outTrackId` per group; the rest is as for Feishu
    /// chats ([`Self::feishu_chats`]): the row is sent when every group accepted the card,
    /// with the track ids joined by spaces.
    async fn dingtalk_chats(
        &self,
        d: &PendingDelivery,
        integration: &klaxon_store::ImIntegration,
        layout: &Value,
        now: Millis,
    ) -> Result<String, SendError> {
        let inner = &self.inner;
        let store_err = |e: StoreError| SendError::Transient(format!("store: {e}"));
        let chats = chat_ids(d);
        if chats.is_empty() {
            return Err(SendError::Permanent(
                "provider_error:the chat lists no DingTalk group".into(),
            ));
        }
        let gone = inner
            .store
            .unavailable_im_chats(d.account_id, integration.integration_id, &chats)
            .await
            .map_err(store_err)?;
        let mut out = ChatResults::default();
        for (i, chat) in chats.into_iter().enumerate() {
            if gone.iter().any(|g| g == chat) {
                out.permanent
                    .push((chat.to_string(), "chat_unavailable".to_string()));
                continue;
            }
            let r = inner
                .http
                .dingtalk_send_card(
                    integration,
                    &crate::dingtalk::track_id(&d.rid, Some(i)),
                    crate::providers::DingtalkTarget::Group(chat),
                    layout,
                    now,
                )
                .await;
            out.add(chat, r);
        }
        out.finish(|e| e == "chat_unavailable")
    }

    /// A Microsoft Teams app direct message (RSP-286, RSP-317): the Adaptive Card with the
    /// rendered `teams_app` template, posted into the personal chat of the member's linked
    /// Teams user, which exists once they sent `linkUser` to the bot. No link, or no
    /// personal chat: `app_not_linked`. The row's message id is `<conversation>|<activity>`.
    async fn teams_dm(
        &self,
        d: &PendingDelivery,
        inc: &klaxon_core::model::Incident,
        contacts: &HashMap<i64, MemberContact>,
        msg: &Message,
        now: Millis,
    ) -> Result<String, SendError> {
        let inner = &self.inner;
        let store_err = |e: StoreError| SendError::Transient(format!("store: {e}"));
        let (integration, user) = self.linked_app_user(d, contacts, "teams").await?;
        let Some(conv) = inner
            .store
            .personal_im_conversation(d.account_id, integration.integration_id, &user)
            .await
            .map_err(store_err)?
        else {
            return Err(SendError::Permanent("app_not_linked".into()));
        };
        let card = self.im_card(d, inc, contacts, msg, now).await?;
        let activity = crate::teams::activity(&crate::teams::card(&card, &[]));
        let id = inner
            .http
            .teams_post(
                &integration,
                &inner.config.teams_login_base,
                &conv.service_url,
                &conv.conversation_id,
                None,
                &activity,
                now,
            )
            .await?;
        Ok(format!("{}|{id}", conv.conversation_id))
    }

    /// Posts `activity` into every linked team or chat of a `teams_app` chat row
    /// (`settings.chat_ids`). A conversation not linked with `linkTeam`/`linkChat`, or one
    /// the bot was removed from, fails with `chat_unavailable` (RSP-300); the rest is as for
    /// Feishu chats ([`Self::feishu_chats`]), the message ids being
    /// `<conversation>|<activity>`.
    async fn teams_chats(
        &self,
        d: &PendingDelivery,
        integration: &klaxon_store::ImIntegration,
        activity: &Value,
        now: Millis,
    ) -> Result<String, SendError> {
        let inner = &self.inner;
        let store_err = |e: StoreError| SendError::Transient(format!("store: {e}"));
        let chats = chat_ids(d);
        if chats.is_empty() {
            return Err(SendError::Permanent(
                "provider_error:the chat lists no Teams team or chat".into(),
            ));
        }
        let mut out = ChatResults::default();
        for chat in chats {
            let conv = inner
                .store
                .im_conversation(d.account_id, integration.integration_id, chat)
                .await
                .map_err(store_err)?
                .filter(|c| c.kind != "personal");
            let Some(conv) = conv else {
                out.permanent
                    .push((chat.to_string(), "chat_unavailable".to_string()));
                continue;
            };
            let r = inner
                .http
                .teams_post(
                    integration,
                    &inner.config.teams_login_base,
                    &conv.service_url,
                    chat,
                    None,
                    activity,
                    now,
                )
                .await
                .map(|id| format!("{chat}|{id}"));
            out.add(chat, r);
        }
        out.finish(|e| e == "chat_unavailable")
    }

    /// Sends `card` to every chat of a `feishu_app` chat row (`settings.chat_ids`, `oc_…`).
    /// A chat recorded as disbanded, or that Feishu says the bot is not in, fails with
    /// `chat_unavailable` (RSP-300); the rest is as for Slack channels ([`Self::slack_chats`]):
    /// the row is sent when every chat accepted the card, with the message ids joined by
    /// spaces.
    async fn feishu_chats(
        &self,
        d: &PendingDelivery,
        integration: &klaxon_store::ImIntegration,
        card: &Value,
        now: Millis,
    ) -> Result<String, SendError> {
        let inner = &self.inner;
        let store_err = |e: StoreError| SendError::Transient(format!("store: {e}"));
        let chats = chat_ids(d);
        if chats.is_empty() {
            return Err(SendError::Permanent(
                "provider_error:the chat lists no Feishu chat".into(),
            ));
        }
        let gone = inner
            .store
            .unavailable_im_chats(d.account_id, integration.integration_id, &chats)
            .await
            .map_err(store_err)?;
        let mut out = ChatResults::default();
        for (i, chat) in chats.into_iter().enumerate() {
            if gone.iter().any(|g| g == chat) {
                out.permanent
                    .push((chat.to_string(), "chat_unavailable".to_string()));
                continue;
            }
            let r = inner
                .http
                // One send per chat: each needs its own de-duplication key.
                .feishu_send_card(
                    integration,
                    &format!("{}-{i}", d.rid),
                    "chat_id",
                    chat,
                    card,
                    now,
                )
                .await;
            out.add(chat, r);
        }
        out.finish(|e| e == "chat_unavailable")
    }

    /// The templated text of a direct SMS, voice, e-mail or IM app send, or of a Feishu or
    /// Zoom bot message (RSP-340,
    /// RSP-346–RSP-348): the rule's template or the default, post-processed and within the
    /// channel's limit.
    async fn templated(
        &self,
        d: &PendingDelivery,
        inc: &klaxon_core::model::Incident,
        contacts: &HashMap<i64, MemberContact>,
        action_url: Option<&str>,
        now: Millis,
    ) -> Result<Option<TemplateOutcome>, SendError> {
        let Some(channel) = TemplateChannel::from_key(&d.channel).filter(|c| {
            matches!(
                c,
                TemplateChannel::Sms
                    | TemplateChannel::Voice
                    | TemplateChannel::Email
                    | TemplateChannel::SlackApp
                    | TemplateChannel::FeishuApp
                    | TemplateChannel::WecomApp
                    | TemplateChannel::DingtalkApp
                    | TemplateChannel::TeamsApp
                    | TemplateChannel::Feishu
                    | TemplateChannel::Zoom
            )
        }) else {
            return Ok(None);
        };
        let inner = &self.inner;
        let store_err = |e: StoreError| SendError::Transient(format!("store: {e}"));
        let names: HashMap<i64, (String, String)> = contacts
            .iter()
            .map(|(id, c)| (*id, (c.name.clone(), c.email.clone())))
            .collect();
        let firing = templating::Firing {
            fire_type: d.fire_type.clone(),
            reason: d.reason.clone(),
            repeat_index: d.repeat_index,
            action_url: action_url.unwrap_or_default().to_string(),
        };
        let out = templating::render_for(
            &inner.store,
            inc,
            &inner.base_url,
            &names,
            &firing,
            &d.escalate_rule_id,
            channel,
            now,
        )
        .await
        .map_err(store_err)?;
        if out.template_fallback {
            // RSP-346: the page still goes out, with the default body.
            tracing::warn!(rid = %d.rid, channel = %d.channel, error = ?out.error,
                "custom template failed; sent the default template instead");
            metrics::counter!("klaxon_template_fallbacks_total").increment(1);
            // Recorded before the send: whichever way the send ends, the default body is what
            // was (or would have been) sent. A lost claim writes nothing; the new holder
            // renders again and records it itself.
            inner
                .store
                .note_template_fallback(&inner.holder, d.seq, now)
                .await
                .map_err(store_err)?;
        }
        if let Some(reason) = out.failed_reason {
            return Err(SendError::Permanent(reason.to_string()));
        }
        Ok(Some(out))
    }

    /// The keypress and status URLs of a call to `d`'s person, with a token signed by the
    /// auth token of the provider account placing it (RSP-314).
    fn call_links(&self, d: &PendingDelivery, auth_token: &str, now: Millis) -> CallLinks {
        let token = phone::sign_token(
            auth_token,
            &phone::VoiceToken {
                account_id: d.account_id,
                incident_id: d.incident_id.clone(),
                member_id: d.person_id,
                rid: d.rid.clone(),
                expires_at: now.saturating_add(phone::VOICE_TOKEN_TTL_MS),
            },
        );
        let base = &self.inner.base_url;
        CallLinks {
            action: format!("{base}{}?t={token}", phone::GATHER_PATH),
            status: format!("{base}{}?t={token}", phone::STATUS_PATH),
        }
    }

    /// The reply code of an SMS to `d`'s person at `e164`: the one this notification was
    /// given before (a retry), else a fresh code no live code of that phone uses. `None`
    /// when no free code was found (the SMS then goes without one).
    async fn reply_code(
        &self,
        d: &PendingDelivery,
        e164: &str,
        now: Millis,
    ) -> Result<Option<String>, SendError> {
        for _ in 0..20 {
            let candidate = phone::new_reply_code(&mut rand::rng());
            let taken = self
                .inner
                .store
                .take_reply_code(&klaxon_store::ReplyCode {
                    phone: e164.to_string(),
                    code: candidate,
                    account_id: d.account_id,
                    incident_id: d.incident_id.clone(),
                    member_id: d.person_id,
                    rid: d.rid.clone(),
                    created_at: now,
                    expires_at: now.saturating_add(phone::REPLY_CODE_TTL_MS),
                })
                .await
                .map_err(|e| SendError::Transient(format!("store: {e}")))?;
            if taken.is_some() {
                return Ok(taken);
            }
        }
        tracing::warn!(rid = %d.rid, "no free SMS reply code; sending without one");
        Ok(None)
    }

    /// A one-click action link for `d`'s person (`{base_url}/act/{token}`): 32 random bytes,
    /// stored hashed, acting as that member on the incident for
    /// [`ACTION_LINK_TTL_MS`]. A retried send makes a new one.
    async fn action_link(&self, d: &PendingDelivery, now: Millis) -> Result<String, SendError> {
        use base64::Engine as _;
        let bytes: [u8; 32] = rand::random();
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        self.inner
            .store
            .create_action_link(&klaxon_store::NewActionLink {
                token: token.clone(),
                account_id: d.account_id,
                incident_id: d.incident_id.clone(),
                member_id: d.person_id,
                rid: d.rid.clone(),
                channel: d.channel.clone(),
                created_at: now,
                expires_at: now.saturating_add(ACTION_LINK_TTL_MS),
            })
            .await
            .map_err(|e| SendError::Transient(format!("store: {e}")))?;
        Ok(format!("{}/act/{token}", self.inner.base_url))
    }

    /// RSP-285: an app push to every device of `d`'s person, through the ntfy server of
    /// `[notify.push]`, with buttons that post to a one-click action link. The send fails
    /// only when every device failed; the provider id lists the devices' message ids.
    async fn app_push(
        &self,
        d: &PendingDelivery,
        contacts: &HashMap<i64, MemberContact>,
        msg: &Message,
        now: Millis,
    ) -> Result<String, SendError> {
        let inner = &self.inner;
        let store_err = |e: StoreError| SendError::Transient(format!("store: {e}"));
        // RSP-281 / response.md 1.3: an inactive member gets nothing.
        if contacts
            .get(&d.person_id)
            .is_none_or(|c| c.status != "enabled")
        {
            return Err(SendError::Permanent("member_inactive".into()));
        }
        let devices = inner
            .store
            .push_devices(d.account_id, d.person_id)
            .await
            .map_err(store_err)?;
        if devices.is_empty() {
            return Err(SendError::Permanent("no_device".into()));
        }
        let Some(cfg) = &inner.config.push else {
            return Err(SendError::Permanent("provider_error:not_configured".into()));
        };
        let push = crate::providers::ntfy::Push {
            title: format!("INC #{} {}", msg.num, msg.title),
            body: format!("{} · {}", msg.severity, msg.channel_name),
            severity: msg.severity.clone(),
            click: msg.detail_url.clone(),
            action_url: self.action_link(d, now).await?,
        };
        let mut ids: Vec<String> = Vec::new();
        let mut errors: Vec<SendError> = Vec::new();
        for device in &devices {
            let key = format!("{}:{}", d.rid, device.device_id);
            match inner
                .http
                .ntfy_publish(cfg, &key, &device.topic, &push)
                .await
            {
                Ok(id) => {
                    inner
                        .store
                        .touch_push_device(device.device_id, now)
                        .await
                        .map_err(store_err)?;
                    ids.push(id);
                }
                Err(e) => errors.push(e),
            }
        }
        if ids.is_empty() {
            return Err(all_failed(errors));
        }
        Ok(ids.join(","))
    }

    async fn direct(
        &self,
        d: &PendingDelivery,
        recipient: &Recipient,
        msg: &Message,
        body: Option<&TemplateOutcome>,
        action_url: Option<&str>,
        now: Millis,
    ) -> Result<String, SendError> {
        let inner = &self.inner;
        // RSP-291: the channel's providers in order; the next one is tried on an error, and
        // the send fails only when all have failed.
        let mut errors: Vec<SendError> = Vec::new();
        match (d.channel.as_str(), recipient) {
            ("email", Recipient::Email { address, name }) => {
                let (html, text) = match body {
                    Some(b) => (b.text.clone(), crate::render::html_to_text(&b.text)),
                    None => msg.email_bodies(action_url),
                };
                for mailer in &inner.mailers {
                    let sent = mailer
                        .send(
                            &d.rid,
                            address,
                            name,
                            &msg.email_subject(),
                            html.clone(),
                            text.clone(),
                        )
                        .await;
                    match sent {
                        Ok(id) => return Ok(id),
                        Err(e) => errors.push(e),
                    }
                }
            }
            ("sms" | "voice", Recipient::Phone { e164 }) => {
                let voice = d.channel == "voice";
                let accounts = [&inner.config.twilio, &inner.config.twilio_backup];
                // An SMS names a reply code that acknowledges or closes the incident.
                let code = if voice {
                    None
                } else {
                    self.reply_code(d, e164, now).await?
                };
                // RSP-293: the prompt and the reply hint speak the account's language.
                let (_, locale) = templating::account_zone_and_locale(&inner.store, d.account_id)
                    .await
                    .map_err(|e| SendError::Transient(format!("store: {e}")))?;
                let texts = crate::texts::texts(&locale);
                for cfg in accounts
                    .into_iter()
                    .flatten()
                    .filter(|t| if voice { t.voice } else { t.sms })
                {
                    let text = match body {
                        Some(b) => b.text.clone(),
                        None if voice => msg.voice(),
                        None => msg.sms(),
                    };
                    let sent = if voice {
                        let links = self.call_links(d, &cfg.auth_token, now);
                        inner
                            .http
                            .call(cfg, &d.rid, e164, &text, Some(&links), texts)
                            .await
                    } else {
                        let text = match &code {
                            Some(code) => crate::phone::sms_with_hint(&text, code, texts),
                            None => text,
                        };
                        inner.http.sms(cfg, &d.rid, e164, &text).await
                    };
                    match sent {
                        Ok(id) => return Ok(id),
                        Err(e) => errors.push(e),
                    }
                }
            }
            (other, _) => {
                return Err(SendError::Permanent(format!(
                    "provider_error:no provider for {other}"
                )));
            }
        }
        Err(all_failed(errors))
    }
}

/// The chats of an IM app chat row (`settings.chat_ids`), trimmed, empty ones left out.
fn chat_ids(d: &PendingDelivery) -> Vec<&str> {
    d.target
        .get("settings")
        .and_then(|s| s.get("chat_ids"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

/// The outcomes of one IM app chat row's posts, one per chat. Every chat is tried; the row is
/// sent when all accepted the message. A transient failure of any chat retries the row
/// (which posts to every chat again: at least once, as for every delivery); a chat the app
/// cannot post to any more fails with `chat_unavailable` (RSP-300) when that is every
/// failure, else the failures are listed per chat.
#[derive(Default)]
struct ChatResults {
    refs: Vec<String>,
    rate_limited: Option<String>,
    transient: Option<String>,
    permanent: Vec<(String, String)>,
}

impl ChatResults {
    fn add(&mut self, chat: &str, r: Result<String, SendError>) {
        match r {
            Ok(r) => self.refs.push(r),
            Err(SendError::RateLimited(t)) => {
                self.rate_limited.get_or_insert(format!("{chat}: {t}"));
            }
            Err(SendError::Transient(t)) => {
                self.transient.get_or_insert(format!("{chat}: {t}"));
            }
            Err(SendError::Permanent(r)) => {
                let text = r.strip_prefix("provider_error:").unwrap_or(&r).to_string();
                self.permanent.push((chat.to_string(), text));
            }
        }
    }

    /// `unavailable` tells whether a platform's error text means the chat is gone.
    fn finish(self, unavailable: impl Fn(&str) -> bool) -> Result<String, SendError> {
        if let Some(t) = self.rate_limited {
            return Err(SendError::RateLimited(t));
        }
        if let Some(t) = self.transient {
            return Err(SendError::Transient(t));
        }
        if self.permanent.is_empty() {
            return Ok(self.refs.join(" "));
        }
        if self.permanent.iter().all(|(_, e)| unavailable(e)) {
            return Err(SendError::Permanent("chat_unavailable".into()));
        }
        let texts: Vec<String> = self
            .permanent
            .iter()
            .map(|(chat, e)| format!("{chat}: {e}"))
            .collect();
        Err(SendError::Permanent(format!(
            "provider_error:{}",
            crate::providers::clean(&texts.join(" | "))
        )))
    }
}

/// `Triggered`, `Processing` or `Closed`, as the wire shows the incident's progress.
pub fn progress_name(inc: &klaxon_core::model::Incident) -> String {
    inc.progress.as_str().to_string()
}

/// The error of a send whose every provider failed: transient if any failure was (another
/// attempt may succeed), and the texts of all of them, in provider order.
fn all_failed(errors: Vec<SendError>) -> SendError {
    if errors.is_empty() {
        return SendError::Permanent("provider_error:not_configured".into());
    }
    let transient = errors
        .iter()
        .any(|e| matches!(e, SendError::Transient(_) | SendError::RateLimited(_)));
    let texts: Vec<String> = errors
        .into_iter()
        .map(|e| match e {
            SendError::Transient(t) | SendError::RateLimited(t) => t,
            SendError::Permanent(r) => r.strip_prefix("provider_error:").unwrap_or(&r).to_string(),
        })
        .collect();
    let text = crate::providers::clean(&texts.join(" | "));
    if transient {
        SendError::Transient(text)
    } else {
        SendError::Permanent(format!("provider_error:{text}"))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Sent,
    Failed,
    Retry,
    Lost,
}

impl Step {
    fn as_str(self) -> &'static str {
        match self {
            Step::Sent => "sent",
            Step::Failed => "failed",
            Step::Retry => "retry",
            Step::Lost => "lost",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_send_fails_only_when_every_provider_failed() {
        // spec: RSP-291
        assert_eq!(
            all_failed(vec![]),
            SendError::Permanent("provider_error:not_configured".into())
        );
        assert_eq!(
            all_failed(vec![
                SendError::Permanent("provider_error:21211 invalid To".into()),
                SendError::Transient("HTTP 503".into()),
            ]),
            SendError::Transient("21211 invalid To | HTTP 503".into())
        );
        assert_eq!(
            all_failed(vec![
                SendError::Permanent("provider_error:a".into()),
                SendError::Permanent("provider_error:b".into()),
            ]),
            SendError::Permanent("provider_error:a | b".into())
        );
    }
}
