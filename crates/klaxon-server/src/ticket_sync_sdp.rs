//! ServiceDesk Plus requests (response.md RSP-407; docs/ticket-sync.md): the v3 API with the
//! `authtoken` header (on-premises) or an OAuth access token (cloud), and the cloud edition's
//! token handling with Zoho accounts.
//!
//! - **Code exchange**: the one-time code (valid 10 minutes) is exchanged when the
//!   integration is saved, so a stale code is refused at once and nothing is saved.
//! - **Refresh**: an access token that expires within a minute is refreshed before use; a 401
//!   refreshes once and tries again (the token may have been revoked early).

use klaxon_core::model::{Incident, Millis};
use klaxon_core::ticket_sync::mapped_fields;
use klaxon_core::ticket_sync_sdp::{
    self as sdp, ACCEPT, AssigneeRule, CreateSettings, TOKEN_MARGIN_MS,
};
use klaxon_notify::tickets::{Auth, Body, TicketClient, TicketRequest, TicketResponse};
use klaxon_store::{Store, StoreError, TicketIntegration, TicketSettings, TicketTokens};
use serde_json::Value;

/// The Zoho token endpoint of a settings' accounts server.
fn token_url(settings: &TicketSettings) -> String {
    let base = if settings.auth_url.is_empty() {
        sdp::DEFAULT_AUTH_URL
    } else {
        settings.auth_url.as_str()
    };
    format!("{}/oauth/v2/token", base.trim_end_matches('/'))
}

/// Tokens from a Zoho token answer; `keep_refresh` stands in when the answer has none (a
/// refresh answer carries only the access token).
fn tokens_of(
    resp: &TicketResponse,
    keep_refresh: &str,
    now: Millis,
) -> Result<TicketTokens, String> {
    let v = resp.json();
    if let Some(e) = v.get("error").and_then(Value::as_str) {
        return Err(e.to_string());
    }
    if !resp.success() {
        return Err(if resp.error.is_empty() {
            "the token request failed".into()
        } else {
            resp.error.clone()
        });
    }
    let access = v
        .get("access_token")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or("the answer has no access_token")?;
    let refresh = v
        .get("refresh_token")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .unwrap_or(keep_refresh);
    if refresh.is_empty() {
        return Err("the answer has no refresh_token".into());
    }
    let expires_in = v.get("expires_in").and_then(Value::as_i64).unwrap_or(3600);
    Ok(TicketTokens {
        access_token: access.to_string(),
        refresh_token: refresh.to_string(),
        expires_at: now.saturating_add(expires_in.saturating_mul(1000)),
    })
}

/// RSP-407 cloud setup: exchanges the one-time code for tokens. `Err` names the field.
pub async fn exchange_code(
    client: &TicketClient,
    settings: &TicketSettings,
    client_secret: &str,
    code: &str,
    now: Millis,
) -> Result<TicketTokens, String> {
    let mut form = vec![
        ("code".to_string(), code.to_string()),
        ("grant_type".to_string(), "authorization_code".to_string()),
        ("client_id".to_string(), settings.client_id.clone()),
        ("client_secret".to_string(), client_secret.to_string()),
    ];
    if !settings.redirect_uri.is_empty() {
        form.push(("redirect_uri".to_string(), settings.redirect_uri.clone()));
    }
    let url = token_url(settings);
    let resp = client
        .send(&TicketRequest {
            method: "POST",
            url: &url,
            auth: Auth::None,
            body: Body::Form(&form),
            accept: "",
        })
        .await;
    tokens_of(&resp, "", now).map_err(|e| {
        if e == "invalid_code" {
            "oauth_code: invalid, already used or expired (a code is valid for 10 minutes)"
                .to_string()
        } else if e == "invalid_client" || e == "invalid_client_secret" {
            format!("client_id: Zoho accounts refused the client ({e})")
        } else {
            format!("oauth_code: the exchange failed: {e}")
        }
    })
}

/// One ServiceDesk Plus integration's requests.
pub(crate) struct Sdp<'a> {
    pub client: &'a TicketClient,
    pub store: &'a Store,
    pub integration: &'a TicketIntegration,
    /// The service URL without a trailing `/`.
    pub base: &'a str,
    pub now: Millis,
}

/// Why a request could not even be made.
pub(crate) enum NotSent {
    /// The stored tokens are missing or refused: a person must set up the code again.
    Final(String),
    /// Zoho accounts could not be reached: try again later.
    Transient(TicketResponse),
    Store(StoreError),
}

impl From<StoreError> for NotSent {
    fn from(e: StoreError) -> Self {
        NotSent::Store(e)
    }
}

impl Sdp<'_> {
    fn cloud(&self) -> bool {
        self.integration.settings.platform == "cloud"
    }

    /// A usable access token: the stored one, or a refreshed one when it (nearly) expired or
    /// `force`.
    async fn access_token(&self, force: bool) -> Result<String, NotSent> {
        let i = self.integration;
        let Some(stored) = self
            .store
            .ticket_tokens(i.account_id, i.integration_id)
            .await?
        else {
            return Err(NotSent::Final(
                "no OAuth tokens: save the integration with a new oauth_code".into(),
            ));
        };
        if !force && stored.expires_at > self.now.saturating_add(TOKEN_MARGIN_MS) {
            return Ok(stored.access_token);
        }
        let form = vec![
            ("refresh_token".to_string(), stored.refresh_token.clone()),
            ("grant_type".to_string(), "refresh_token".to_string()),
            ("client_id".to_string(), i.settings.client_id.clone()),
            ("client_secret".to_string(), i.secret.clone()),
        ];
        let url = token_url(&i.settings);
        let resp = self
            .client
            .send(&TicketRequest {
                method: "POST",
                url: &url,
                auth: Auth::None,
                body: Body::Form(&form),
                accept: "",
            })
            .await;
        if resp.status.is_none() || resp.status.is_some_and(|s| s == 429 || s >= 500) {
            return Err(NotSent::Transient(resp));
        }
        let fresh = tokens_of(&resp, &stored.refresh_token, self.now)
            .map_err(|e| NotSent::Final(format!("the OAuth token refresh failed: {e}")))?;
        self.store
            .save_ticket_tokens(i.account_id, i.integration_id, &fresh, self.now)
            .await?;
        Ok(fresh.access_token)
    }

    async fn send_with(
        &self,
        method: &str,
        url: &str,
        form: &[(String, String)],
        token: &str,
    ) -> TicketResponse {
        let bearer;
        let auth = if self.cloud() {
            bearer = format!("Zoho-oauthtoken {token}");
            Auth::Header("Authorization", &bearer)
        } else {
            Auth::Header("authtoken", &self.integration.secret)
        };
        let body = if form.is_empty() {
            Body::None
        } else {
            Body::Form(form)
        };
        self.client
            .send(&TicketRequest {
                method,
                url,
                auth,
                body,
                accept: ACCEPT,
            })
            .await
    }

    /// One v3 call (`path` after `/api/v3`) with `input_data`; a 2xx whose
    /// `response_status` is not a success is reported as a failure (final).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        input: Option<&Value>,
    ) -> Result<TicketResponse, NotSent> {
        let url = format!("{}/api/v3{path}", self.base);
        let form: Vec<(String, String)> = input
            .map(|v| vec![("input_data".to_string(), v.to_string())])
            .unwrap_or_default();
        let mut resp = if self.cloud() {
            let token = self.access_token(false).await?;
            let first = self.send_with(method, &url, &form, &token).await;
            if first.status == Some(401) {
                let token = self.access_token(true).await?;
                self.send_with(method, &url, &form, &token).await
            } else {
                first
            }
        } else {
            self.send_with(method, &url, &form, "").await
        };
        if resp.success() && !sdp::answer_ok(&resp.json()) {
            resp.status = Some(422);
            resp.error = "ServiceDesk Plus did not report success".into();
        }
        Ok(resp)
    }

    /// RSP-407 create: `(id, display id, URL)` of the new request, or why none was made
    /// before sending (an unknown assignee).
    pub async fn create(
        &self,
        inc: &Incident,
    ) -> Result<(TicketResponse, Option<(String, String, String)>), NotSent> {
        let i = self.integration;
        let s = &i.settings;
        let rule = AssigneeRule {
            label: &s.assignee_label,
            kind: &s.assignee_kind,
            mapping: Some(&s.assignee_mapping),
        };
        let assignee = sdp::assignee(&rule, inc).map_err(NotSent::Final)?;
        let priority = sdp::priority(&s.priority_source, &i.severity_mapping, inc);
        let input = sdp::create_input(
            inc,
            &CreateSettings {
                template: &s.template,
                requester: &s.requester,
            },
            priority.as_deref(),
            assignee.as_ref(),
            &mapped_fields(inc, &i.field_mapping),
        );
        let resp = self.call("POST", "/requests", Some(&input)).await?;
        let made = if resp.success() {
            sdp::created(&resp.json()).map(|(id, display)| {
                let url = sdp::request_url(self.base, self.cloud(), &id);
                (id, display, url)
            })
        } else {
            None
        };
        Ok((resp, made))
    }
}
