//! Calls to label mapping services (ingest.md ING-072…075), made by the inbox worker between
//! two attempts at a batch, never while a transaction is open.
//!
//! Each call is `POST <rendered url>` with the JSON body the core built, `Content-Type:
//! application/json` and the service's custom headers; redirects are not followed; the body
//! is read up to 1 MiB; the service's `timeout` bounds each attempt; a 5xx, a timeout or a
//! connection error is retried `retry_count` more times. What a response means is the core's
//! `classify`. Targets go through the same private-address guard as webhooks
//! (`notify.allow_private_targets` lets them reach private addresses).

use std::sync::Arc;
use std::time::Duration;

use klaxon_core::enrichment::api::{Attempt, MAX_RESPONSE_BYTES, classify, oversized};
use klaxon_core::enrichment::{ApiAnswer, ApiCall};
use klaxon_store::ApiAnswers;
use tokio::sync::Semaphore;

/// Calls in flight at once for one batch.
const CONCURRENCY: usize = 16;

/// The HTTP clients of the calls: TLS verified, and not (`insecure_skip_verify`).
#[derive(Clone)]
pub struct Callers {
    verified: reqwest::Client,
    unverified: reqwest::Client,
    allow_private: bool,
}

fn build(allow_private: bool, skip_verify: bool) -> Result<reqwest::Client, String> {
    klaxon_notify::install_crypto_provider();
    let mut builder = reqwest::Client::builder()
        // ING-073: redirects are not followed.
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .tls_danger_accept_invalid_certs(skip_verify)
        .user_agent(concat!("klaxon-enrichment/", env!("CARGO_PKG_VERSION")));
    if let Some(r) = klaxon_notify::guard::resolver(allow_private) {
        builder = builder.dns_resolver(r);
    }
    builder
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))
}

impl Callers {
    pub fn new(allow_private: bool) -> Result<Callers, String> {
        Ok(Callers {
            verified: build(allow_private, false)?,
            unverified: build(allow_private, true)?,
            allow_private,
        })
    }

    /// Makes every call (at most [`CONCURRENCY`] at a time) and records each outcome.
    pub async fn call_all(&self, calls: Vec<ApiCall>, answers: &mut ApiAnswers) {
        let limit = Arc::new(Semaphore::new(CONCURRENCY));
        let mut set = tokio::task::JoinSet::new();
        for call in calls {
            let this = self.clone();
            let limit = limit.clone();
            set.spawn(async move {
                let _permit = limit.acquire_owned().await;
                let answer = this.call(&call).await;
                (call, answer)
            });
        }
        while let Some(done) = set.join_next().await {
            match done {
                Ok((call, answer)) => {
                    if let ApiAnswer::Failed(why) = &answer {
                        tracing::warn!(
                            account = call.service.account_id,
                            service = %call.service.service_id,
                            error = %why,
                            "a label mapping service call failed; the event goes on unenriched by this rule"
                        );
                    }
                    metrics::counter!(
                        "klaxon_enrichment_api_calls_total",
                        "result" => match &answer {
                            ApiAnswer::Labels(_) => "ok",
                            ApiAnswer::NoResult => "no_result",
                            ApiAnswer::Failed(_) => "failed",
                        }
                    )
                    .increment(1);
                    answers.insert(call.key(), answer);
                }
                Err(e) => tracing::error!(error = %e, "a mapping service call task failed"),
            }
        }
    }

    /// One call with its retries (ING-073).
    pub async fn call(&self, call: &ApiCall) -> ApiAnswer {
        let url = match reqwest::Url::parse(&call.url) {
            Ok(u) => u,
            Err(e) => return ApiAnswer::Failed(format!("invalid URL: {e}")),
        };
        if let Err(e) = klaxon_notify::guard::check_url(&url, self.allow_private) {
            return ApiAnswer::Failed(e);
        }
        let attempts = 1 + call.service.retry_count.min(1);
        let mut last = String::new();
        for _ in 0..attempts {
            match self.attempt(call, &url).await {
                Attempt::Done(answer) => return answer,
                Attempt::Retry(why) => last = why,
            }
        }
        ApiAnswer::Failed(last)
    }

    async fn attempt(&self, call: &ApiCall, url: &reqwest::Url) -> Attempt {
        let client = if call.service.insecure_skip_verify {
            &self.unverified
        } else {
            &self.verified
        };
        let mut req = client
            .post(url.clone())
            .timeout(Duration::from_secs(call.service.timeout.max(1)))
            .header(reqwest::header::CONTENT_TYPE, "application/json");
        for (name, value) in &call.service.headers {
            req = req.header(name.as_str(), value.as_str());
        }
        let mut resp = match req.body(call.body.clone()).send().await {
            Ok(r) => r,
            Err(e) => return failure(&e),
        };
        let status = resp.status().as_u16();
        let mut body: Vec<u8> = Vec::new();
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                        return Attempt::Done(oversized());
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => return failure(&e),
            }
        }
        classify(status, &body)
    }
}

/// A request error: timeouts and connection errors are retried; a target the address guard
/// refused is not.
fn failure(e: &reqwest::Error) -> Attempt {
    let mut chain = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        chain.push_str(": ");
        chain.push_str(&s.to_string());
        source = std::error::Error::source(s);
    }
    if chain.contains("resolves to no public address") {
        return Attempt::Done(ApiAnswer::Failed(chain));
    }
    if e.is_timeout() {
        return Attempt::Retry("timeout".into());
    }
    Attempt::Retry(chain)
}
