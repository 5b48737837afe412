//! The IM platform calls of war rooms (response.md RSP-431…436; docs/war-rooms.md): creating
//! a group chat, inviting members, looking users up by e-mail or phone, the share link and
//! disbanding. They use the same HTTP client, token caches and answer checks as the apps'
//! messages.

use serde_json::{Value, json};

use super::{
    HttpProviders, SendError, feishu_base, slack_value, wecom_base, wecom_code, wecom_result,
};

impl HttpProviders {
    /// Calls a Slack Web API method with a JSON body and the bot token.
    pub async fn slack_call(
        &self,
        api_base: &str,
        bot_token: &str,
        method: &str,
        body: &Value,
    ) -> Result<Value, SendError> {
        self.slack_json(api_base, bot_token, method, body, None)
            .await
    }

    /// Calls a Slack Web API method that takes form arguments (`users.lookupByEmail`).
    pub async fn slack_form_call(
        &self,
        api_base: &str,
        bot_token: &str,
        method: &str,
        form: &[(&str, &str)],
    ) -> Result<Value, SendError> {
        let url = self.slack_method_url(api_base, method)?;
        let body = serde_urlencoded::to_string(form)
            .map_err(|e| SendError::provider(format!("cannot encode the form: {e}")))?;
        let req = self
            .client()?
            .post(url)
            .bearer_auth(bot_token)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body);
        let (status, text) = self.send(req).await?;
        slack_value(status, &text)
    }

    /// Calls a Feishu open platform API (`path` below `/open-apis/`) with the tenant access
    /// token; `body` None sends no body.
    pub async fn feishu_call(
        &self,
        integration: &klaxon_store::ImIntegration,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        now: klaxon_core::model::Millis,
    ) -> Result<Value, SendError> {
        let token = self.feishu_token(integration, now).await?;
        let base = feishu_base(integration);
        let url = self.url(&format!("{base}/open-apis/{path}"))?;
        let mut req = self.client()?.request(method, url).bearer_auth(&token);
        if let Some(b) = body {
            req = req
                .header("Content-Type", "application/json; charset=utf-8")
                .body(b.to_string());
        }
        let (status, text) = self.send(req).await?;
        self.feishu_checked(integration, status, &text)
    }

    /// Calls a WeCom server API (`path` below the origin) with the access token.
    pub async fn wecom_call(
        &self,
        integration: &klaxon_store::ImIntegration,
        path: &str,
        body: &Value,
        now: klaxon_core::model::Millis,
    ) -> Result<Value, SendError> {
        self.wecom_post(integration, path, body, now).await
    }

    /// WeCom's look-up of a user id by mobile (`user/getuserid`) or e-mail
    /// (`user/get_userid_by_email`); `None` when WeCom knows no such user.
    pub async fn wecom_lookup(
        &self,
        integration: &klaxon_store::ImIntegration,
        email: &str,
        mobile: &str,
        now: klaxon_core::model::Millis,
    ) -> Result<Option<String>, SendError> {
        let attempts: Vec<(&str, Value)> = [
            (!email.is_empty()).then(|| {
                (
                    "cgi-bin/user/get_userid_by_email",
                    json!({"email": email, "email_type": 1}),
                )
            }),
            (!mobile.is_empty()).then(|| ("cgi-bin/user/getuserid", json!({"mobile": mobile}))),
        ]
        .into_iter()
        .flatten()
        .collect();
        for (path, body) in attempts {
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
            // 46004: no such user; 60103/40220: not a valid phone / e-mail.
            if matches!(code, 46004 | 60103 | 40220) {
                continue;
            }
            let v = wecom_result(status, &text)?;
            if let Some(id) = v["userid"].as_str().filter(|s| !s.is_empty()) {
                return Ok(Some(id.to_string()));
            }
        }
        Ok(None)
    }
}
