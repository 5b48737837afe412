//! HTTP providers: SMS and voice through a Twilio-compatible REST API, and the group-chat bots
//! (Slack incoming webhooks, Feishu, DingTalk, WeCom, Telegram), each with the request body its
//! vendor documents and the way its answers report errors.
//!
//! Every request carries `Idempotency-Key: <rid>` (the outbox row's id): delivery is at least
//! once, and a provider or proxy that honours the header can drop a repeat.

use std::time::Duration;

use base64::Engine as _;
use hmac::{KeyInit, Mac};
use serde_json::{Value, json};

use crate::config::TwilioConfig;
use crate::guard;
use crate::render::{self, Message};

pub mod ntfy;
mod war_room;

/// What a group-chat bot message says: incident messages and shift reminders share the bots'
/// wire formats, signing and mentions, and differ only in their text.
pub trait BotContent {
    /// The plain text, with the mentions (already formatted for the platform) placed in it.
    fn bot_text(&self, mentions: &str) -> String;
    /// One line, for platforms whose messages have a title (DingTalk markdown).
    fn title(&self) -> String;
}

impl BotContent for Message {
    fn bot_text(&self, mentions: &str) -> String {
        Message::bot_text(self, mentions)
    }

    fn title(&self) -> String {
        render::one_line(&format!("INC #{} {}", self.num, self.title))
    }
}

/// Why one attempt failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// Worth another attempt: the network, a timeout, a 5xx, a 429 or a vendor rate limit.
    Transient(String),
    /// Final: this `failed_reason` (response.md 1.17) is recorded at once.
    Permanent(String),
    /// The platform's quota refused the message (HTTP 429 or a vendor "too fast" code):
    /// retried with back-off until 60 s after the decision, then `rate_limited` (RSP-292).
    RateLimited(String),
}

impl SendError {
    fn provider(text: impl AsRef<str>) -> SendError {
        SendError::Permanent(format!("provider_error:{}", clean(text.as_ref())))
    }
}

/// A short single-line version of a provider's message, for `provider_error:<text>`.
pub fn clean(text: &str) -> String {
    render::truncate_chars(&render::one_line(text), 200, "…")
}

/// The callback URLs of one call: the keypress action and the status callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallLinks {
    pub action: String,
    pub status: String,
}

/// A person named in a group message: display name and phone (E.164 or "").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mention {
    pub name: String,
    pub phone: String,
}

/// The HTTP side of delivery. The client (TLS roots included, about 3 MiB) is built on the
/// first send, so a node that never sends over HTTP does not carry it.
#[derive(Clone)]
pub struct HttpProviders {
    client: std::sync::Arc<std::sync::OnceLock<Result<reqwest::Client, String>>>,
    timeout: Duration,
    allow_private: bool,
}

impl HttpProviders {
    pub fn new(timeout_ms: u64, allow_private: bool) -> Result<HttpProviders, String> {
        Ok(HttpProviders::lazy(timeout_ms, allow_private))
    }

    /// The same, infallible: nothing is built before the first request.
    pub fn lazy(timeout_ms: u64, allow_private: bool) -> HttpProviders {
        HttpProviders {
            client: std::sync::Arc::new(std::sync::OnceLock::new()),
            timeout: Duration::from_millis(timeout_ms),
            allow_private,
        }
    }

    fn client(&self) -> Result<&reqwest::Client, SendError> {
        self.client
            .get_or_init(|| {
                crate::install_crypto_provider();
                let mut builder = reqwest::Client::builder()
                    .timeout(self.timeout)
                    .connect_timeout(self.timeout)
                    .redirect(reqwest::redirect::Policy::none())
                    .no_proxy()
                    .user_agent(concat!("klaxon-notify/", env!("CARGO_PKG_VERSION")));
                if let Some(r) = guard::resolver(self.allow_private) {
                    builder = builder.dns_resolver(r);
                }
                builder
                    .build()
                    .map_err(|e| format!("cannot build the HTTP client: {e}"))
            })
            .as_ref()
            .map_err(|e| SendError::provider(e.clone()))
    }

    fn url(&self, raw: &str) -> Result<reqwest::Url, SendError> {
        let url = reqwest::Url::parse(raw.trim())
            .map_err(|e| SendError::provider(format!("invalid URL: {e}")))?;
        guard::check_url(&url, self.allow_private).map_err(SendError::provider)?;
        Ok(url)
    }

    /// Sends one request and returns (status, body text); network trouble is transient.
    async fn send(&self, req: reqwest::RequestBuilder) -> Result<(u16, String), SendError> {
        let resp = req.send().await.map_err(|e| {
            // Bot URLs carry secrets (Telegram's token is in the path, DingTalk's in the
            // query): error texts go to logs and `failed_reason` without the URL.
            let e = e.without_url();
            let mut text = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                let more = s.to_string();
                if !text.contains(&more) {
                    text.push_str(": ");
                    text.push_str(&more);
                }
                src = s.source();
            }
            SendError::Transient(clean(&text))
        })?;
        let status = resp.status().as_u16();
        let body = resp
            .text()
            .await
            .map_err(|e| SendError::Transient(clean(&e.without_url().to_string())))?;
        Ok((status, body))
    }

    // ---- Twilio-compatible SMS and voice ----

    async fn twilio(
        &self,
        cfg: &TwilioConfig,
        resource: &str,
        rid: &str,
        form: &[(&str, &str)],
    ) -> Result<String, SendError> {
        let url = self.url(&format!(
            "{}/2010-04-01/Accounts/{}/{resource}",
            cfg.api_base.trim_end_matches('/'),
            cfg.account_sid
        ))?;
        let body = serde_urlencoded::to_string(form)
            .map_err(|e| SendError::provider(format!("cannot encode the form: {e}")))?;
        let req = self
            .client()?
            .post(url)
            .basic_auth(&cfg.account_sid, Some(&cfg.auth_token))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .header("Idempotency-Key", rid)
            .body(body);
        let (status, text) = self.send(req).await?;
        let parsed: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if (200..300).contains(&status) {
            return Ok(parsed["sid"].as_str().unwrap_or_default().to_string());
        }
        let message = parsed["message"]
            .as_str()
            .map(|m| match parsed["code"].as_i64() {
                Some(code) => format!("{code} {m}"),
                None => m.to_string(),
            })
            .unwrap_or_else(|| format!("HTTP {status}"));
        if status == 429 {
            Err(SendError::RateLimited(clean(&message)))
        } else if status >= 500 {
            Err(SendError::Transient(clean(&message)))
        } else {
            Err(SendError::provider(message))
        }
    }

    /// An SMS (RSP-283): `POST …/Messages.json` with `To`, `From`, `Body`.
    pub async fn sms(
        &self,
        cfg: &TwilioConfig,
        rid: &str,
        to: &str,
        body: &str,
    ) -> Result<String, SendError> {
        self.twilio(
            cfg,
            "Messages.json",
            rid,
            &[("To", to), ("From", &cfg.from), ("Body", body)],
        )
        .await
    }

    /// A voice call (RSP-282): `POST …/Calls.json` with `To`, `From` and inline `Twiml` that
    /// says the text twice. With `links`, the text is read inside a one-digit `<Gather>`
    /// whose action is the keypress URL, and the call's final status is reported to the
    /// status URL (RSP-314; [`crate::phone`]).
    pub async fn call(
        &self,
        cfg: &TwilioConfig,
        rid: &str,
        to: &str,
        text: &str,
        links: Option<&CallLinks>,
        texts: &crate::texts::Texts,
    ) -> Result<String, SendError> {
        let twiml = crate::phone::call_twiml(text, links.map(|l| l.action.as_str()), texts);
        let mut form = vec![("To", to), ("From", cfg.from.as_str()), ("Twiml", &twiml)];
        if let Some(l) = links {
            form.push(("StatusCallback", l.status.as_str()));
            form.push(("StatusCallbackMethod", "POST"));
        }
        self.twilio(cfg, "Calls.json", rid, &form).await
    }

    // ---- group-chat bots ----

    /// Posts a bot message for a group-chat target (`settings` of response.md 1.12).
    /// `now_ms` is the signing timestamp for Feishu and DingTalk.
    pub async fn bot(
        &self,
        kind: &str,
        settings: &Value,
        rid: &str,
        msg: &(dyn BotContent + Sync),
        mentions: &[Mention],
        now_ms: i64,
    ) -> Result<String, SendError> {
        let s = |k: &str| {
            settings
                .get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .trim()
                .to_string()
        };
        let plain: String = mentions
            .iter()
            .map(|m| format!("@{}", m.name))
            .collect::<Vec<_>>()
            .join(" ");
        match kind {
            "slack" => {
                let text = slack_escape(&render::truncate_chars(
                    &msg.bot_text(&plain),
                    render::SLACK_MAX_CHARS,
                    "…",
                ));
                let url = self.url(&s("webhook_url"))?;
                let (status, body) = self.post_json(url, rid, &json!({ "text": text })).await?;
                slack_result(status, &body)
            }
            "feishu" => {
                let url = self.url(&bot_target(kind, settings))?;
                let text = render::truncate_bytes(&msg.bot_text(&plain), render::BOT_MAX_BYTES);
                let mut body = json!({"msg_type": "text", "content": {"text": text}});
                let secret = s("secret");
                if !secret.is_empty() {
                    let ts = (now_ms / 1000).to_string();
                    body["timestamp"] = json!(ts);
                    body["sign"] = json!(feishu_sign(&ts, &secret));
                }
                let (status, text) = self.post_json(url, rid, &body).await?;
                vendor_result(
                    status,
                    &text,
                    &["code", "StatusCode"],
                    &[9499, 11232, 11233],
                )
            }
            "dingtalk" => {
                let mut url = self.url(&bot_target(kind, settings))?;
                let secret = s("secret");
                if !secret.is_empty() {
                    let ts = now_ms.to_string();
                    url.query_pairs_mut()
                        .append_pair("timestamp", &ts)
                        .append_pair("sign", &dingtalk_sign(&ts, &secret));
                }
                let mobiles: Vec<String> = mentions
                    .iter()
                    .filter(|m| !m.phone.is_empty())
                    .map(|m| dingtalk_mobile(&m.phone))
                    .collect();
                // RSP-289: the DingTalk bot @-mentions by phone; the text must carry the
                // `@<mobile>` for the mention to show. People without a phone get `@name`.
                let at_text: String = mentions
                    .iter()
                    .map(|m| {
                        if m.phone.is_empty() {
                            format!("@{}", m.name)
                        } else {
                            format!("@{}", dingtalk_mobile(&m.phone))
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(" ");
                let text = render::truncate_bytes(
                    &markdown_lines(&msg.bot_text(&at_text)),
                    render::BOT_MAX_BYTES,
                );
                let body = json!({
                    "msgtype": "markdown",
                    "markdown": {"title": msg.title(), "text": text},
                    "at": {"atMobiles": mobiles, "isAtAll": false},
                });
                let (status, text) = self.post_json(url, rid, &body).await?;
                vendor_result(status, &text, &["errcode"], &[130101])
            }
            "wecom" => {
                let url = self.url(&bot_target(kind, settings))?;
                let text = render::truncate_bytes(
                    &markdown_lines(&msg.bot_text(&plain)),
                    render::BOT_MAX_BYTES,
                );
                let body = json!({"msgtype": "markdown", "markdown": {"content": text}});
                let (status, text) = self.post_json(url, rid, &body).await?;
                vendor_result(status, &text, &["errcode"], &[45009])
            }
            "telegram" => {
                let text = msg.bot_text(&plain);
                if text.chars().count() > render::TELEGRAM_MAX_CHARS {
                    return Err(SendError::Permanent("message_too_long".into()));
                }
                let base = match s("api_base_url") {
                    b if b.is_empty() => "https://api.telegram.org".to_string(),
                    b => b.trim_end_matches('/').to_string(),
                };
                let url = self.url(&format!("{base}/bot{}/sendMessage", s("bot_token")))?;
                let chat_id = settings.get("chat_id").cloned().unwrap_or(Value::Null);
                let body =
                    json!({"chat_id": chat_id, "text": text, "disable_web_page_preview": true});
                let (status, text) = self.post_json(url, rid, &body).await?;
                telegram_result(status, &text)
            }
            other => Err(SendError::Permanent(format!(
                "provider_error:{other} is not supported yet"
            ))),
        }
    }

    /// Posts a bot message whose body is the rendered channel template (RSP-288): the Feishu
    /// bot (RSP-349) and the Zoom bot (RSP-350). `rendered` is already post-processed and
    /// within the channel's limit (`klaxon_core::template`).
    pub async fn templated_bot(
        &self,
        kind: &str,
        settings: &Value,
        rid: &str,
        rendered: &str,
        now_ms: i64,
    ) -> Result<String, SendError> {
        let s = |k: &str| {
            settings
                .get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .trim()
                .to_string()
        };
        match kind {
            "feishu" => {
                let url = self.url(&bot_target(kind, settings))?;
                let mut body = feishu_bot_body(rendered);
                let secret = s("secret");
                if !secret.is_empty() {
                    let ts = (now_ms / 1000).to_string();
                    body["timestamp"] = json!(ts);
                    body["sign"] = json!(feishu_sign(&ts, &secret));
                }
                let (status, text) = self.post_json(url, rid, &body).await?;
                vendor_result(
                    status,
                    &text,
                    &["code", "StatusCode"],
                    &[9499, 11232, 11233],
                )
            }
            "zoom" => {
                let url = self.url(&s("endpoint"))?;
                // The template layer guarantees the shape (a custom body that misses it falls
                // back to the default); a body that still is not JSON is not sent.
                let body: Value = serde_json::from_str(rendered.trim())
                    .map_err(|e| SendError::provider(format!("the zoom body is not JSON: {e}")))?;
                let req = self
                    .client()?
                    .post(url)
                    .header("Content-Type", "application/json")
                    .header("Authorization", s("verify_token"))
                    .header("Idempotency-Key", rid)
                    .body(body.to_string());
                let (status, text) = self.send(req).await?;
                zoom_result(status, &text)
            }
            other => Err(SendError::Permanent(format!(
                "provider_error:{other} bots do not take templated bodies"
            ))),
        }
    }

    // ---- the Slack app (Web API) ----

    /// `chat.postMessage` with the bot token (RSP-286): `message` is the card, `channel` the
    /// Slack user id of a direct message (Slack opens the app's DM with that user). Ok =
    /// `<channel>/<ts>` of the posted message.
    pub async fn slack_post_message(
        &self,
        api_base: &str,
        bot_token: &str,
        rid: &str,
        channel: &str,
        message: &Value,
    ) -> Result<String, SendError> {
        let mut body = message.clone();
        if let Some(obj) = body.as_object_mut() {
            obj.insert("channel".into(), Value::String(channel.to_string()));
        }
        let v = self
            .slack_json(api_base, bot_token, "chat.postMessage", &body, Some(rid))
            .await?;
        Ok(slack_message_ref(&v))
    }

    /// `chat.update` of a card posted earlier (`message_ref` = `<channel>/<ts>` as
    /// [`Self::slack_post_message`] returned it) with `message`.
    pub async fn slack_update_message(
        &self,
        api_base: &str,
        bot_token: &str,
        message_ref: &str,
        message: &Value,
    ) -> Result<String, SendError> {
        let Some((channel, ts)) = message_ref.split_once('/') else {
            return Err(SendError::provider(format!(
                "not a Slack message reference: {message_ref}"
            )));
        };
        let mut body = message.clone();
        if let Some(obj) = body.as_object_mut() {
            obj.insert("channel".into(), Value::String(channel.to_string()));
            obj.insert("ts".into(), Value::String(ts.to_string()));
        }
        let v = self
            .slack_json(api_base, bot_token, "chat.update", &body, None)
            .await?;
        Ok(slack_message_ref(&v))
    }

    /// The address of a Slack Web API method.
    fn slack_method_url(&self, api_base: &str, method: &str) -> Result<reqwest::Url, SendError> {
        self.url(&format!(
            "{}/{method}",
            api_base.trim().trim_end_matches('/')
        ))
    }

    /// Calls a Slack Web API method with a JSON body and the bot token (and an
    /// `Idempotency-Key` when given); the answer's JSON when `ok`.
    pub(crate) async fn slack_json(
        &self,
        api_base: &str,
        bot_token: &str,
        method: &str,
        body: &Value,
        idempotency_key: Option<&str>,
    ) -> Result<Value, SendError> {
        let mut req = self
            .client()?
            .post(self.slack_method_url(api_base, method)?)
            .bearer_auth(bot_token)
            .header("Content-Type", "application/json; charset=utf-8");
        if let Some(key) = idempotency_key {
            req = req.header("Idempotency-Key", key);
        }
        let (status, text) = self.send(req.body(body.to_string())).await?;
        slack_value(status, &text)
    }

    /// Posts to the `response_url` of an interaction (update the card, or answer the clicking
    /// user alone). Slack answers `ok` in plain text, or an error.
    pub async fn slack_respond(&self, response_url: &str, body: &Value) -> Result<(), SendError> {
        let url = self.url(response_url)?;
        let req = self
            .client()?
            .post(url)
            .header("Content-Type", "application/json; charset=utf-8")
            .body(body.to_string());
        let (status, text) = self.send(req).await?;
        match status {
            200..=299 => Ok(()),
            429 => Err(SendError::RateLimited(clean(&format!(
                "HTTP {status} {text}"
            )))),
            500..=599 => Err(SendError::Transient(clean(&format!(
                "HTTP {status} {text}"
            )))),
            _ => Err(SendError::provider(format!("{status} {}", text.trim()))),
        }
    }

    // ---- the Feishu/Lark app (open platform API) ----

    /// The app's tenant access token (RSP-302): the cached one while it lasts, else a fresh
    /// one from `auth/v3/tenant_access_token/internal` with the App ID and App Secret.
    pub async fn feishu_token(
        &self,
        integration: &klaxon_store::ImIntegration,
        now: klaxon_core::model::Millis,
    ) -> Result<String, SendError> {
        let base = feishu_base(integration);
        let (app_id, secret) = (&integration.app_id, &integration.bot_token);
        if let Some(t) = crate::feishu::cached_token(&base, app_id, secret, now) {
            return Ok(t);
        }
        let url = self.url(&format!(
            "{base}/open-apis/auth/v3/tenant_access_token/internal"
        ))?;
        let body = json!({"app_id": app_id, "app_secret": secret});
        let req = self
            .client()?
            .post(url)
            .header("Content-Type", "application/json; charset=utf-8")
            .body(body.to_string());
        let (status, text) = self.send(req).await?;
        let v = feishu_result(status, &text)?;
        let token = v["tenant_access_token"].as_str().unwrap_or_default();
        if token.is_empty() {
            return Err(SendError::provider(
                "Feishu answered no tenant_access_token",
            ));
        }
        let expire = v["expire"].as_i64().unwrap_or(0);
        crate::feishu::remember_token(&base, app_id, secret, token, expire, now);
        Ok(token.to_string())
    }

    /// Sends `card` as an interactive message (`im/v1/messages`) to a user (`open_id`) or a
    /// chat (`chat_id`). `uuid` makes Feishu drop a repeat of the same send within an hour
    /// (a retry after a lost answer); at most 50 characters. Ok = the message id, what an
    /// update needs.
    #[allow(clippy::too_many_arguments)]
    pub async fn feishu_send_card(
        &self,
        integration: &klaxon_store::ImIntegration,
        uuid: &str,
        receive_id_type: &str,
        receive_id: &str,
        card: &Value,
        now: klaxon_core::model::Millis,
    ) -> Result<String, SendError> {
        let token = self.feishu_token(integration, now).await?;
        let base = feishu_base(integration);
        let url = self.url(&format!(
            "{base}/open-apis/im/v1/messages?receive_id_type={receive_id_type}"
        ))?;
        let body = json!({
            "receive_id": receive_id,
            "msg_type": "interactive",
            "content": card.to_string(),
            "uuid": uuid,
        });
        let req = self
            .client()?
            .post(url)
            .bearer_auth(&token)
            .header("Content-Type", "application/json; charset=utf-8")
            .header("Idempotency-Key", uuid)
            .body(body.to_string());
        let (status, text) = self.send(req).await?;
        let v = self.feishu_checked(integration, status, &text)?;
        Ok(v["data"]["message_id"]
            .as_str()
            .unwrap_or_default()
            .to_string())
    }

    /// Replaces a card sent earlier (`PATCH im/v1/messages/{message_id}`, RSP-312).
    pub async fn feishu_update_card(
        &self,
        integration: &klaxon_store::ImIntegration,
        message_id: &str,
        card: &Value,
        now: klaxon_core::model::Millis,
    ) -> Result<(), SendError> {
        if message_id.is_empty()
            || !message_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(SendError::provider(format!(
                "not a Feishu message id: {message_id}"
            )));
        }
        let token = self.feishu_token(integration, now).await?;
        let base = feishu_base(integration);
        let url = self.url(&format!("{base}/open-apis/im/v1/messages/{message_id}"))?;
        let body = json!({ "content": card.to_string() });
        let req = self
            .client()?
            .patch(url)
            .bearer_auth(&token)
            .header("Content-Type", "application/json; charset=utf-8")
            .body(body.to_string());
        let (status, text) = self.send(req).await?;
        self.feishu_checked(integration, status, &text).map(|_| ())
    }

    /// [`feishu_result`], and a refused token is dropped from the cache so the retry asks for
    /// a new one.
    fn feishu_checked(
        &self,
        integration: &klaxon_store::ImIntegration,
        status: u16,
        text: &str,
    ) -> Result<Value, SendError> {
        let (code, _) = feishu_code(text);
        if crate::feishu::token_rejected(code) {
            crate::feishu::forget_token(
                &feishu_base(integration),
                &integration.app_id,
                &integration.bot_token,
            );
            return Err(SendError::Transient(clean(&format!(
                "Feishu refused the tenant access token ({code})"
            ))));
        }
        feishu_result(status, text)
    }

    /// GETs a JSON document (the Bot Connector's OpenID metadata and keys).
    pub async fn get_json(&self, url: &str) -> Result<Value, SendError> {
        let url = self.url(url)?;
        let (status, text) = self.send(self.client()?.get(url)).await?;
        if !(200..=299).contains(&status) {
            return Err(SendError::Transient(clean(&format!(
                "HTTP {status} {text}"
            ))));
        }
        serde_json::from_str(&text).map_err(|_| SendError::provider("not a JSON document"))
    }

    // ---- the Microsoft Teams app (Bot Connector) ----

    /// The bot's access token for the Bot Connector (RSP-302): the cached one while it lasts,
    /// else a client-credentials grant with the App ID and client secret from the Microsoft
    /// identity platform at `login_base` (the bot's tenant, or `botframework.com` for a
    /// multi-tenant bot).
    pub async fn teams_token(
        &self,
        integration: &klaxon_store::ImIntegration,
        login_base: &str,
        now: klaxon_core::model::Millis,
    ) -> Result<String, SendError> {
        let tenant = match integration.tenant_id.trim() {
            "" => crate::teams::DEFAULT_TENANT,
            t => t,
        };
        let endpoint = format!(
            "{}/{tenant}/oauth2/v2.0/token",
            login_base.trim_end_matches('/')
        );
        let (app_id, secret) = (&integration.app_id, &integration.bot_token);
        if let Some(t) = crate::teams::cached_token(&endpoint, app_id, secret, now) {
            return Ok(t);
        }
        let url = self.url(&endpoint)?;
        let form = serde_urlencoded::to_string([
            ("grant_type", "client_credentials"),
            ("client_id", app_id.as_str()),
            ("client_secret", secret.as_str()),
            ("scope", crate::teams::SCOPE),
        ])
        .map_err(|e| SendError::provider(e.to_string()))?;
        let req = self
            .client()?
            .post(url)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(form);
        let (status, text) = self.send(req).await?;
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if status >= 500 || status == 429 {
            return Err(SendError::Transient(clean(&format!(
                "HTTP {status} {text}"
            ))));
        }
        let token = v["access_token"].as_str().unwrap_or_default();
        if token.is_empty() {
            // The platform's own words: `error_description` starts with its error code.
            let why = v["error_description"]
                .as_str()
                .or(v["error"].as_str())
                .map(|d| d.lines().next().unwrap_or_default().to_string())
                .unwrap_or_else(|| format!("HTTP {status} {}", text.trim()));
            return Err(SendError::provider(why));
        }
        let expires = v["expires_in"].as_i64().unwrap_or(0);
        crate::teams::remember_token(&endpoint, app_id, secret, token, expires, now);
        Ok(token.to_string())
    }

    /// The Bot Connector URL of a conversation's activities (`…/v3/conversations/{id}/
    /// activities[/{activity}]`); conversation ids carry `:`, `;` and `@`.
    fn teams_url(
        &self,
        service_url: &str,
        conversation_id: &str,
        activity_id: Option<&str>,
    ) -> Result<reqwest::Url, SendError> {
        let mut url = self.url(service_url.trim())?;
        {
            let mut segs = url
                .path_segments_mut()
                .map_err(|_| SendError::provider("the Teams service URL cannot take a path"))?;
            segs.pop_if_empty()
                .extend(["v3", "conversations", conversation_id, "activities"]);
            if let Some(a) = activity_id {
                segs.push(a);
            }
        }
        Ok(url)
    }

    /// Posts `activity` into a conversation (a reply to `reply_to` when given). Ok = the new
    /// activity's id, what an update needs.
    #[allow(clippy::too_many_arguments)]
    pub async fn teams_post(
        &self,
        integration: &klaxon_store::ImIntegration,
        login_base: &str,
        service_url: &str,
        conversation_id: &str,
        reply_to: Option<&str>,
        activity: &Value,
        now: klaxon_core::model::Millis,
    ) -> Result<String, SendError> {
        let token = self.teams_token(integration, login_base, now).await?;
        let url = self.teams_url(service_url, conversation_id, reply_to)?;
        let req = self
            .client()?
            .post(url)
            .bearer_auth(&token)
            .header("Content-Type", "application/json; charset=utf-8")
            .body(activity.to_string());
        let (status, text) = self.send(req).await?;
        let v = self.teams_checked(integration, login_base, status, &text)?;
        Ok(v["id"].as_str().unwrap_or_default().to_string())
    }

    /// Replaces an activity the bot posted (RSP-312).
    #[allow(clippy::too_many_arguments)]
    pub async fn teams_update(
        &self,
        integration: &klaxon_store::ImIntegration,
        login_base: &str,
        service_url: &str,
        conversation_id: &str,
        activity_id: &str,
        activity: &Value,
        now: klaxon_core::model::Millis,
    ) -> Result<(), SendError> {
        let token = self.teams_token(integration, login_base, now).await?;
        let url = self.teams_url(service_url, conversation_id, Some(activity_id))?;
        let req = self
            .client()?
            .put(url)
            .bearer_auth(&token)
            .header("Content-Type", "application/json; charset=utf-8")
            .body(activity.to_string());
        let (status, text) = self.send(req).await?;
        self.teams_checked(integration, login_base, status, &text)
            .map(|_| ())
    }

    /// The Bot Connector answers 2xx with a resource, or an error status with
    /// `{error: {code, message}}`. A refused token is dropped from the cache; a conversation
    /// the bot was removed from is `chat_unavailable` (RSP-300).
    fn teams_checked(
        &self,
        integration: &klaxon_store::ImIntegration,
        login_base: &str,
        status: u16,
        text: &str,
    ) -> Result<Value, SendError> {
        let v: Value = serde_json::from_str(text).unwrap_or(Value::Null);
        match status {
            200..=299 => Ok(v),
            401 => {
                let tenant = match integration.tenant_id.trim() {
                    "" => crate::teams::DEFAULT_TENANT,
                    t => t,
                };
                let endpoint = format!(
                    "{}/{tenant}/oauth2/v2.0/token",
                    login_base.trim_end_matches('/')
                );
                crate::teams::forget_token(&endpoint, &integration.app_id, &integration.bot_token);
                Err(SendError::Transient(
                    "Teams refused the bot's token (401)".into(),
                ))
            }
            403 | 404 => Err(SendError::Permanent("chat_unavailable".into())),
            429 => Err(SendError::RateLimited(clean(&format!("HTTP 429 {text}")))),
            500..=599 => Err(SendError::Transient(clean(&format!(
                "HTTP {status} {text}"
            )))),
            _ => Err(SendError::provider(
                v["error"]["message"]
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("HTTP {status} {}", text.trim())),
            )),
        }
    }

    // ---- the WeCom app (server API) ----

    /// The app's access token (RSP-302): the cached one while it lasts, else a fresh one from
    /// `cgi-bin/gettoken` with the corp ID and the app's Secret.
    pub async fn wecom_token(
        &self,
        integration: &klaxon_store::ImIntegration,
        now: klaxon_core::model::Millis,
    ) -> Result<String, SendError> {
        let base = wecom_base(integration);
        let (corp, secret) = (&integration.app_id, &integration.bot_token);
        if let Some(t) = crate::wecom::cached_token(&base, corp, secret, now) {
            return Ok(t);
        }
        let mut url = self.url(&format!("{base}/cgi-bin/gettoken"))?;
        url.query_pairs_mut()
            .append_pair("corpid", corp)
            .append_pair("corpsecret", secret);
        let (status, text) = self.send(self.client()?.get(url)).await?;
        let v = wecom_result(status, &text)?;
        let token = v["access_token"].as_str().unwrap_or_default();
        if token.is_empty() {
            return Err(SendError::provider("WeCom answered no access_token"));
        }
        let expires = v["expires_in"].as_i64().unwrap_or(0);
        crate::wecom::remember_token(&base, corp, secret, token, expires, now);
        Ok(token.to_string())
    }

    /// Sends `card` (a `template_card`) to the WeCom user `user_id` as the app's agent
    /// (`message/send`). Ok = the response code WeCom answers ("" if none): it allows one
    /// update of the card within 72 hours (RSP-313).
    pub async fn wecom_send_card(
        &self,
        integration: &klaxon_store::ImIntegration,
        user_id: &str,
        card: &Value,
        now: klaxon_core::model::Millis,
    ) -> Result<String, SendError> {
        let body = json!({
            "touser": user_id,
            "msgtype": "template_card",
            "agentid": wecom_agent(integration)?,
            "template_card": card,
            // A retry of the same card within WeCom's window is not delivered twice.
            "enable_duplicate_check": 1,
            "duplicate_check_interval": 1800,
        });
        let v = self
            .wecom_post(integration, "cgi-bin/message/send", &body, now)
            .await?;
        // WeCom accepts the call but names recipients it could not reach.
        let invalid = v["invaliduser"].as_str().unwrap_or_default();
        if !invalid.is_empty() {
            return Err(SendError::provider(format!(
                "WeCom user {invalid} cannot receive the app's messages"
            )));
        }
        Ok(v["response_code"].as_str().unwrap_or_default().to_string())
    }

    /// Replaces a card sent to `user_id` (`message/update_template_card`), spending
    /// `response_code` (RSP-312, RSP-313).
    pub async fn wecom_update_card(
        &self,
        integration: &klaxon_store::ImIntegration,
        user_id: &str,
        response_code: &str,
        card: &Value,
        now: klaxon_core::model::Millis,
    ) -> Result<(), SendError> {
        let body = json!({
            "userids": [user_id],
            "agentid": wecom_agent(integration)?,
            "response_code": response_code,
            "template_card": card,
        });
        self.wecom_post(
            integration,
            "cgi-bin/message/update_template_card",
            &body,
            now,
        )
        .await
        .map(|_| ())
    }

    /// POSTs `body` to a WeCom API with the access token; a token WeCom refuses is dropped
    /// from the cache so the retry asks for a new one.
    async fn wecom_post(
        &self,
        integration: &klaxon_store::ImIntegration,
        path: &str,
        body: &Value,
        now: klaxon_core::model::Millis,
    ) -> Result<Value, SendError> {
        let token = self.wecom_token(integration, now).await?;
        let base = wecom_base(integration);
        let mut url = self.url(&format!("{base}/{path}"))?;
        url.query_pairs_mut().append_pair("access_token", &token);
        let req = self
            .client()?
            .post(url)
            .header("Content-Type", "application/json; charset=utf-8")
            .body(body.to_string());
        let (status, text) = self.send(req).await?;
        let (code, _) = wecom_code(&text);
        if crate::wecom::token_rejected(code) {
            crate::wecom::forget_token(&base, &integration.app_id, &integration.bot_token);
            return Err(SendError::Transient(clean(&format!(
                "WeCom refused the access token ({code})"
            ))));
        }
        wecom_result(status, &text)
    }

    // ---- the DingTalk app (server API) ----

    /// The app's access token (RSP-302): the cached one while it lasts, else a fresh one from
    /// `/v1.0/oauth2/accessToken` with the Client ID (AppKey) and Client Secret.
    pub async fn dingtalk_token(
        &self,
        integration: &klaxon_store::ImIntegration,
        now: klaxon_core::model::Millis,
    ) -> Result<String, SendError> {
        let (base, _) = dingtalk_bases(integration);
        let (client_id, secret) = (&integration.app_id, &integration.bot_token);
        if let Some(t) = crate::app_tokens::cached_token(&base, client_id, secret, now) {
            return Ok(t);
        }
        let url = self.url(&format!("{base}/v1.0/oauth2/accessToken"))?;
        let body = json!({"appKey": client_id, "appSecret": secret});
        let req = self
            .client()?
            .post(url)
            .header("Content-Type", "application/json")
            .body(body.to_string());
        let (status, text) = self.send(req).await?;
        let v = dingtalk_result(status, &text)?;
        let token = v["accessToken"].as_str().unwrap_or_default();
        if token.is_empty() {
            return Err(SendError::provider("DingTalk answered no accessToken"));
        }
        let expires = v["expireIn"].as_i64().unwrap_or(0);
        crate::app_tokens::remember_token(&base, client_id, secret, token, expires, now);
        Ok(token.to_string())
    }

    /// Sends the card `layout` (RSP-286) as the app's robot: to one user
    /// (`conversationType` 0, `receiverUserIdList`) or into a group (`conversationType` 1,
    /// `openConversationId`), with `out_track_id` as the card's id for later updates and
    /// callbacks (`/v1.0/im/interactiveCards/send`).
    pub async fn dingtalk_send_card(
        &self,
        integration: &klaxon_store::ImIntegration,
        out_track_id: &str,
        to: DingtalkTarget<'_>,
        layout: &Value,
        now: klaxon_core::model::Millis,
    ) -> Result<String, SendError> {
        let mut body = json!({
            "cardTemplateId": crate::dingtalk::CARD_TEMPLATE,
            "outTrackId": out_track_id,
            "robotCode": integration.app_id,
            "callbackRouteKey": crate::dingtalk::callback_route_key(integration.integration_id),
            "cardData": crate::dingtalk::card_data(layout),
        });
        match to {
            DingtalkTarget::User(user_id) => {
                body["conversationType"] = json!(crate::dingtalk::SINGLE_CHAT);
                body["receiverUserIdList"] = json!([user_id]);
            }
            DingtalkTarget::Group(chat_id) => {
                body["conversationType"] = json!(crate::dingtalk::GROUP_CHAT);
                body["openConversationId"] = json!(chat_id);
            }
        }
        self.dingtalk_call(
            integration,
            reqwest::Method::POST,
            "/v1.0/im/interactiveCards/send",
            out_track_id,
            &body,
            now,
        )
        .await?;
        Ok(out_track_id.to_string())
    }

    /// Replaces the content of card `out_track_id` with `layout` (RSP-312;
    /// `PUT /v1.0/im/interactiveCards`).
    pub async fn dingtalk_update_card(
        &self,
        integration: &klaxon_store::ImIntegration,
        out_track_id: &str,
        layout: &Value,
        now: klaxon_core::model::Millis,
    ) -> Result<(), SendError> {
        let body = json!({
            "outTrackId": out_track_id,
            "cardData": crate::dingtalk::card_data(layout),
            "cardOptions": {"updateCardDataByKey": false, "updatePrivateDataByKey": false},
        });
        self.dingtalk_call(
            integration,
            reqwest::Method::PUT,
            "/v1.0/im/interactiveCards",
            "",
            &body,
            now,
        )
        .await
        .map(|_| ())
    }

    /// The DingTalk user id of the organisation member with this phone number (E.164), the
    /// one-click link of RSP-301 (`topapi/v2/user/getbymobile`). `Ok(None)` = DingTalk knows
    /// no member with that number.
    pub async fn dingtalk_user_by_mobile(
        &self,
        integration: &klaxon_store::ImIntegration,
        e164: &str,
        now: klaxon_core::model::Millis,
    ) -> Result<Option<String>, SendError> {
        let token = self.dingtalk_token(integration, now).await?;
        let (base, oapi) = dingtalk_bases(integration);
        let mut url = self.url(&format!("{oapi}/topapi/v2/user/getbymobile"))?;
        url.query_pairs_mut().append_pair("access_token", &token);
        let body = json!({"mobile": dingtalk_mobile(e164)});
        let req = self
            .client()?
            .post(url)
            .header("Content-Type", "application/json")
            .body(body.to_string());
        let (status, text) = self.send(req).await?;
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        match v["errcode"].as_i64() {
            Some(0) => Ok(v["result"]["userid"]
                .as_str()
                .filter(|u| !u.is_empty())
                .map(str::to_string)),
            // 60121: no such user in the organisation.
            Some(60121) => Ok(None),
            Some(40014 | 42001) => {
                crate::app_tokens::forget_token(&base, &integration.app_id, &integration.bot_token);
                Err(SendError::Transient(
                    "DingTalk refused the access token".into(),
                ))
            }
            _ => vendor_result(status, &text, &["errcode"], &[90018, 90002]).map(|_| None),
        }
    }

    /// Calls the current server API with the access token; a refused token is dropped from
    /// the cache so the retry asks for a new one.
    async fn dingtalk_call(
        &self,
        integration: &klaxon_store::ImIntegration,
        method: reqwest::Method,
        path: &str,
        idempotency_key: &str,
        body: &Value,
        now: klaxon_core::model::Millis,
    ) -> Result<Value, SendError> {
        let token = self.dingtalk_token(integration, now).await?;
        let (base, _) = dingtalk_bases(integration);
        let url = self.url(&format!("{base}{path}"))?;
        let mut req = self
            .client()?
            .request(method, url)
            .header("x-acs-dingtalk-access-token", &token)
            .header("Content-Type", "application/json")
            .body(body.to_string());
        if !idempotency_key.is_empty() {
            req = req.header("Idempotency-Key", idempotency_key);
        }
        let (status, text) = self.send(req).await?;
        let (code, _) = dingtalk_code(&text);
        if status == 401 || crate::dingtalk::token_rejected(&code) {
            crate::app_tokens::forget_token(&base, &integration.app_id, &integration.bot_token);
            return Err(SendError::Transient(clean(&format!(
                "DingTalk refused the access token ({code})"
            ))));
        }
        dingtalk_result(status, &text)
    }

    async fn post_json(
        &self,
        url: reqwest::Url,
        rid: &str,
        body: &Value,
    ) -> Result<(u16, String), SendError> {
        let req = self
            .client()?
            .post(url)
            .header("Content-Type", "application/json")
            .header("Idempotency-Key", rid)
            .body(body.to_string());
        self.send(req).await
    }
}

/// The bot's URL: `settings.url` (the engine expands a bare token, response.md 1.12), else
/// `token_or_url` expanded here.
fn bot_target(kind: &str, settings: &Value) -> String {
    match settings.get("url").and_then(Value::as_str) {
        Some(u) if !u.is_empty() => u.to_string(),
        _ => klaxon_core::response::rules::bot_url(
            kind,
            settings
                .get("token_or_url")
                .and_then(Value::as_str)
                .unwrap_or_default(),
        ),
    }
}

/// RSP-349: a rendered Feishu bot body that is a JSON object with `msg_type` `interactive`
/// (a card) or `post` (rich text) is sent as it is; anything else goes as a `text` message
/// carrying the whole rendered string.
pub fn feishu_bot_body(rendered: &str) -> Value {
    match serde_json::from_str::<Value>(rendered.trim()) {
        Ok(v)
            if v.is_object()
                && matches!(
                    v.get("msg_type").and_then(Value::as_str),
                    Some("interactive" | "post")
                ) =>
        {
            v
        }
        _ => json!({"msg_type": "text", "content": {"text": rendered}}),
    }
}

/// Zoom's incoming webhook answers 2xx on success and an error status otherwise (with
/// `{code, message}` as JSON when it says why).
fn zoom_result(status: u16, body: &str) -> Result<String, SendError> {
    match status {
        200..=299 => Ok(String::new()),
        429 => Err(SendError::RateLimited(clean(&format!("HTTP 429 {body}")))),
        500..=u16::MAX => Err(SendError::Transient(clean(&format!(
            "HTTP {status} {body}"
        )))),
        _ => {
            let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
            let msg = v
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or(body)
                .trim();
            Err(SendError::provider(format!("HTTP {status} {msg}")))
        }
    }
}

/// Markdown renders single newlines as spaces on these platforms; end lines with two spaces.
fn markdown_lines(text: &str) -> String {
    text.lines().collect::<Vec<_>>().join("  \n")
}

/// Slack asks for `&`, `<` and `>` to be escaped in message text.
fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// DingTalk takes mainland China numbers without the country code.
pub(crate) fn dingtalk_mobile(e164: &str) -> String {
    e164.strip_prefix("+86")
        .map(str::to_string)
        .unwrap_or_else(|| e164.to_string())
}

fn feishu_sign(ts: &str, secret: &str) -> String {
    // Feishu: HMAC-SHA256 keyed with "timestamp\nsecret" over an empty message, base64.
    let key = format!("{ts}\n{secret}");
    let mac = hmac::Hmac::<sha2_11::Sha256>::new_from_slice(key.as_bytes()).map(Mac::finalize);
    match mac {
        Ok(out) => base64::engine::general_purpose::STANDARD.encode(out.into_bytes()),
        Err(_) => String::new(),
    }
}

fn dingtalk_sign(ts: &str, secret: &str) -> String {
    // DingTalk: HMAC-SHA256 keyed with the secret over "timestamp\nsecret", base64.
    let Ok(mut mac) = hmac::Hmac::<sha2_11::Sha256>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(format!("{ts}\n{secret}").as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

fn slack_result(status: u16, body: &str) -> Result<String, SendError> {
    match status {
        200..=299 => Ok(String::new()),
        429 => Err(SendError::RateLimited(clean(&format!(
            "HTTP {status} {body}"
        )))),
        500..=599 => Err(SendError::Transient(clean(&format!(
            "HTTP {status} {body}"
        )))),
        _ => {
            let b = body.trim();
            if matches!(
                b,
                "channel_not_found" | "channel_is_archived" | "no_service" | "no_team"
            ) || status == 410
            {
                Err(SendError::Permanent("chat_unavailable".into()))
            } else {
                Err(SendError::provider(format!("{status} {b}")))
            }
        }
    }
}

/// The Slack Web API answers 200 with `{ok, error}`; 429 (with `Retry-After`) when a method's
/// rate tier is exhausted. The answer's JSON when `ok`.
fn slack_value(status: u16, body: &str) -> Result<Value, SendError> {
    if status == 429 {
        return Err(SendError::RateLimited(clean(&format!(
            "HTTP {status} {body}"
        ))));
    }
    if status >= 500 {
        return Err(SendError::Transient(clean(&format!(
            "HTTP {status} {body}"
        ))));
    }
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    if v["ok"] == Value::Bool(true) {
        return Ok(v);
    }
    let error = v["error"].as_str().unwrap_or(body.trim());
    match error {
        "ratelimited" => Err(SendError::RateLimited(clean(error))),
        "internal_error" | "fatal_error" | "service_unavailable" | "request_timeout" => {
            Err(SendError::Transient(clean(error)))
        }
        _ => Err(SendError::provider(error)),
    }
}

/// `<channel>/<ts>` of a message Slack posted or updated.
fn slack_message_ref(answer: &Value) -> String {
    let channel = answer["channel"].as_str().unwrap_or_default();
    let ts = answer["ts"].as_str().unwrap_or_default();
    crate::slack::message_ref(channel, ts)
}

/// The open platform origin of a Feishu integration, without a trailing slash.
fn feishu_base(integration: &klaxon_store::ImIntegration) -> String {
    let b = integration.api_base.trim().trim_end_matches('/');
    if b.is_empty() {
        crate::feishu::DEFAULT_API_BASE.to_string()
    } else {
        b.to_string()
    }
}

fn wecom_base(integration: &klaxon_store::ImIntegration) -> String {
    let b = integration.api_base.trim().trim_end_matches('/');
    if b.is_empty() {
        crate::wecom::DEFAULT_API_BASE.to_string()
    } else {
        b.to_string()
    }
}

/// The AgentId a WeCom call names, a number.
fn wecom_agent(integration: &klaxon_store::ImIntegration) -> Result<i64, SendError> {
    integration
        .agent_id
        .trim()
        .parse()
        .map_err(|_| SendError::provider("the WeCom integration has no AgentId"))
}

/// `errcode` and `errmsg` of a WeCom answer; [`i64::MIN`] when there is none (WeCom's own
/// -1 means "system busy").
fn wecom_code(body: &str) -> (i64, String) {
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    (
        v["errcode"].as_i64().unwrap_or(i64::MIN),
        v["errmsg"].as_str().unwrap_or_default().to_string(),
    )
}

/// WeCom answers HTTP 200 with `{errcode, errmsg, …}`, errcode 0 = success; RSP-302: any
/// other code is the platform's message in `provider_error:<errmsg>`.
fn wecom_result(status: u16, body: &str) -> Result<Value, SendError> {
    if status == 429 {
        return Err(SendError::RateLimited(clean(&format!(
            "HTTP {status} {body}"
        ))));
    }
    if status >= 500 {
        return Err(SendError::Transient(clean(&format!(
            "HTTP {status} {body}"
        ))));
    }
    let (code, msg) = wecom_code(body);
    match code {
        0 => Ok(serde_json::from_str(body).unwrap_or(Value::Null)),
        i64::MIN => Err(SendError::provider(format!(
            "HTTP {status} {}",
            body.trim()
        ))),
        -1 => Err(SendError::Transient(clean(&format!(
            "WeCom is busy: {msg}"
        )))),
        c if crate::wecom::rate_limited(c) => Err(SendError::RateLimited(clean(&msg))),
        c => Err(SendError::provider(if msg.is_empty() {
            format!("errcode {c}")
        } else {
            msg
        })),
    }
}

/// Where a DingTalk app card goes.
#[derive(Debug, Clone, Copy)]
pub enum DingtalkTarget<'a> {
    /// A user's one-to-one chat with the app's robot.
    User(&'a str),
    /// A group (`openConversationId`) the app is installed in.
    Group(&'a str),
}

/// The origins a DingTalk integration calls: the current server API and the older one. An
/// integration's `api_base` (a proxy) serves both.
fn dingtalk_bases(integration: &klaxon_store::ImIntegration) -> (String, String) {
    let b = integration.api_base.trim().trim_end_matches('/');
    if b.is_empty() {
        (
            crate::dingtalk::DEFAULT_API_BASE.to_string(),
            crate::dingtalk::DEFAULT_OAPI_BASE.to_string(),
        )
    } else {
        (b.to_string(), b.to_string())
    }
}

/// `code` and `message` of a current server API error answer; "" when there is none.
fn dingtalk_code(body: &str) -> (String, String) {
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    (
        v["code"].as_str().unwrap_or_default().to_string(),
        v["message"].as_str().unwrap_or_default().to_string(),
    )
}

/// The current server API answers 2xx with the result, or an error status with
/// `{code, message}`; 429 or a QPS-limit code when a quota is exhausted (RSP-292). RSP-302:
/// any other error is the platform's message in `provider_error:<message>`.
fn dingtalk_result(status: u16, body: &str) -> Result<Value, SendError> {
    let (code, msg) = dingtalk_code(body);
    if status == 429 || crate::dingtalk::rate_limited(&code) {
        return Err(SendError::RateLimited(clean(&format!("{code} {msg}"))));
    }
    if status >= 500 {
        return Err(SendError::Transient(clean(&format!(
            "HTTP {status} {body}"
        ))));
    }
    if (200..300).contains(&status) {
        let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
        // Some answers say `success: false` with a 200.
        if v.get("success") == Some(&Value::Bool(false)) {
            return Err(SendError::provider(format!("{code} {msg}").trim()));
        }
        return Ok(v);
    }
    Err(SendError::provider(if code.is_empty() {
        format!("HTTP {status} {}", body.trim())
    } else {
        format!("{code} {msg}")
    }))
}

/// `code` and `msg` of an open platform answer; code -1 when there is none.
fn feishu_code(body: &str) -> (i64, String) {
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    (
        v["code"].as_i64().unwrap_or(-1),
        v["msg"].as_str().unwrap_or_default().to_string(),
    )
}

/// The open platform answers `{code, msg, data}`, code 0 = success, often with HTTP 400 for
/// an error; 429 or a "too many requests" code when a quota is exhausted (RSP-292).
fn feishu_result(status: u16, body: &str) -> Result<Value, SendError> {
    if status == 429 {
        return Err(SendError::RateLimited(clean(&format!(
            "HTTP {status} {body}"
        ))));
    }
    if status >= 500 {
        return Err(SendError::Transient(clean(&format!(
            "HTTP {status} {body}"
        ))));
    }
    let (code, msg) = feishu_code(body);
    match code {
        0 => Ok(serde_json::from_str(body).unwrap_or(Value::Null)),
        -1 => Err(SendError::provider(format!(
            "HTTP {status} {}",
            body.trim()
        ))),
        c if crate::feishu::rate_limited(c) => Err(SendError::RateLimited(clean(&msg))),
        c if crate::feishu::chat_unavailable(c) => {
            Err(SendError::Permanent("chat_unavailable".into()))
        }
        c => Err(SendError::provider(if msg.is_empty() {
            format!("code {c}")
        } else {
            msg
        })),
    }
}

/// Feishu, DingTalk and WeCom answer 200 with a JSON error code (0 = success).
fn vendor_result(
    status: u16,
    body: &str,
    code_keys: &[&str],
    rate_limit_codes: &[i64],
) -> Result<String, SendError> {
    if status == 429 {
        return Err(SendError::RateLimited(clean(&format!(
            "HTTP {status} {body}"
        ))));
    }
    if status >= 500 {
        return Err(SendError::Transient(clean(&format!(
            "HTTP {status} {body}"
        ))));
    }
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let code = code_keys
        .iter()
        .find_map(|k| v.get(*k).and_then(Value::as_i64));
    let msg = ["msg", "errmsg", "StatusMessage"]
        .iter()
        .find_map(|k| v.get(*k).and_then(Value::as_str))
        .unwrap_or(body);
    match code {
        Some(0) if (200..300).contains(&status) => Ok(String::new()),
        Some(c) if rate_limit_codes.contains(&c) => {
            Err(SendError::RateLimited(clean(&format!("{c} {msg}"))))
        }
        Some(c) => Err(SendError::provider(format!("{c} {msg}"))),
        None => Err(SendError::provider(format!(
            "HTTP {status} {}",
            body.trim()
        ))),
    }
}

fn telegram_result(status: u16, body: &str) -> Result<String, SendError> {
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    if v["ok"] == Value::Bool(true) {
        return Ok(v["result"]["message_id"]
            .as_i64()
            .map(|id| id.to_string())
            .unwrap_or_default());
    }
    let desc = v["description"].as_str().unwrap_or(body);
    if status == 429 {
        return Err(SendError::RateLimited(clean(&format!("{status} {desc}"))));
    }
    if status >= 500 {
        return Err(SendError::Transient(clean(&format!("{status} {desc}"))));
    }
    let lower = desc.to_lowercase();
    if lower.contains("chat not found") || lower.contains("kicked") || status == 403 {
        return Err(SendError::Permanent("chat_unavailable".into()));
    }
    if lower.contains("message is too long") {
        return Err(SendError::Permanent("message_too_long".into()));
    }
    Err(SendError::provider(format!("{status} {desc}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feishu_bodies_are_cards_rich_text_or_text() {
        // spec: RSP-349
        let card = r#"{"msg_type": "interactive", "card": {"elements": []}}"#;
        assert_eq!(
            feishu_bot_body(card),
            serde_json::from_str::<Value>(card).unwrap()
        );
        let post = r#" {"msg_type": "post", "content": {"post": {}}} "#;
        assert_eq!(feishu_bot_body(post)["msg_type"], "post");
        for other in [
            r#"{"msg_type": "image", "content": {}}"#,
            r#"["interactive"]"#,
            "INC #1 db down",
            "{not json",
        ] {
            assert_eq!(
                feishu_bot_body(other),
                json!({"msg_type": "text", "content": {"text": other}}),
                "{other}"
            );
        }
    }

    #[test]
    fn zoom_answers() {
        // spec: RSP-350
        assert_eq!(zoom_result(200, ""), Ok(String::new()));
        assert!(matches!(
            zoom_result(429, ""),
            Err(SendError::RateLimited(_))
        ));
        assert!(matches!(zoom_result(503, ""), Err(SendError::Transient(_))));
        assert_eq!(
            zoom_result(
                401,
                r#"{"code": 401, "message": "Invalid authorization token"}"#
            ),
            Err(SendError::Permanent(
                "provider_error:HTTP 401 Invalid authorization token".into()
            ))
        );
    }

    #[test]
    fn vendor_codes_map_to_outcomes() {
        // spec: RSP-302 (misconfigured adapters fail with provider_error:<platform message>)
        assert_eq!(
            vendor_result(200, r#"{"code":0,"msg":"success"}"#, &["code"], &[9499]),
            Ok(String::new())
        );
        assert_eq!(
            vendor_result(
                200,
                r#"{"code":19021,"msg":"sign match fail"}"#,
                &["code"],
                &[]
            ),
            Err(SendError::Permanent(
                "provider_error:19021 sign match fail".into()
            ))
        );
        assert!(matches!(
            vendor_result(
                200,
                r#"{"errcode":130101,"errmsg":"send too fast"}"#,
                &["errcode"],
                &[130101]
            ),
            Err(SendError::RateLimited(_))
        ));
        assert!(matches!(
            vendor_result(502, "bad gateway", &["errcode"], &[]),
            Err(SendError::Transient(_))
        ));
    }

    #[test]
    fn slack_and_telegram_errors() {
        // spec: RSP-300 (chat_unavailable), RSP-348 (telegram message_too_long)
        assert_eq!(slack_result(200, "ok"), Ok(String::new()));
        assert_eq!(
            slack_result(404, "channel_not_found"),
            Err(SendError::Permanent("chat_unavailable".into()))
        );
        assert_eq!(
            slack_result(400, "invalid_payload"),
            Err(SendError::Permanent(
                "provider_error:400 invalid_payload".into()
            ))
        );
        assert!(matches!(
            slack_result(503, ""),
            Err(SendError::Transient(_))
        ));
        assert_eq!(
            telegram_result(200, r#"{"ok":true,"result":{"message_id":42}}"#),
            Ok("42".into())
        );
        assert_eq!(
            telegram_result(
                400,
                r#"{"ok":false,"error_code":400,"description":"Bad Request: chat not found"}"#
            ),
            Err(SendError::Permanent("chat_unavailable".into()))
        );
        assert!(matches!(
            telegram_result(
                429,
                r#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 5"}"#
            ),
            Err(SendError::RateLimited(_))
        ));
    }

    #[test]
    fn feishu_open_platform_answers() {
        // spec: RSP-302 (provider_error:<platform message>), RSP-300, RSP-292
        assert!(
            feishu_result(200, r#"{"code":0,"msg":"ok","data":{"message_id":"om_1"}}"#).is_ok()
        );
        assert_eq!(
            feishu_result(400, r#"{"code":230001,"msg":"invalid receive_id"}"#),
            Err(SendError::Permanent(
                "provider_error:invalid receive_id".into()
            ))
        );
        assert_eq!(
            feishu_result(
                400,
                r#"{"code":230002,"msg":"Bot/User can NOT be out of the chat."}"#
            ),
            Err(SendError::Permanent("chat_unavailable".into()))
        );
        assert!(matches!(
            feishu_result(
                400,
                r#"{"code":99991400,"msg":"request trigger frequency limit"}"#
            ),
            Err(SendError::RateLimited(_))
        ));
        assert!(matches!(
            feishu_result(503, ""),
            Err(SendError::Transient(_))
        ));
    }

    #[test]
    fn slack_web_api_answers() {
        // spec: RSP-302 (misconfigured adapters fail with provider_error:<platform message>)
        assert_eq!(
            slack_value(
                200,
                r#"{"ok":true,"channel":"D024BE91L","ts":"1503435956.000247"}"#
            )
            .map(|v| slack_message_ref(&v)),
            Ok("D024BE91L/1503435956.000247".into())
        );
        assert_eq!(
            slack_value(200, r#"{"ok":false,"error":"invalid_auth"}"#),
            Err(SendError::Permanent("provider_error:invalid_auth".into()))
        );
        assert!(matches!(
            slack_value(429, ""),
            Err(SendError::RateLimited(_))
        ));
        assert!(matches!(
            slack_value(200, r#"{"ok":false,"error":"ratelimited"}"#),
            Err(SendError::RateLimited(_))
        ));
        assert!(matches!(
            slack_value(200, r#"{"ok":false,"error":"internal_error"}"#),
            Err(SendError::Transient(_))
        ));
    }

    #[test]
    fn signatures_follow_the_vendor_recipes() {
        // Known values computed with an independent HMAC-SHA256 implementation (Python's
        // hmac module) for the documented recipes.
        assert_eq!(
            dingtalk_sign("1700000000000", "SECabc"),
            "jcUpW0QmtKduN03n4JqQ0PBosVjqnM8gU7fIIvsDmCM="
        );
        assert_eq!(
            feishu_sign("1700000000", "abc"),
            "VIS10b0EBvzzSdFnuk4tznEmK5wHaruvf/WnViv2yR4="
        );
        assert_eq!(dingtalk_mobile("+8613800000000"), "13800000000");
        assert_eq!(dingtalk_mobile("+15550100"), "+15550100");
    }
}
