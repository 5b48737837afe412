//! The runner of HTTP pull integrations (ingest.md §2.19): scheduling (ING-221), the
//! requests (ING-223 timeout and retries, ING-230 redirects and address guard), ingestion of
//! the items through the push path (ING-224, ING-231) and the history (ING-229).
//!
//! What a pull *does* with pages and items is `klaxon_sources::http_pull`; when it runs and
//! who runs it is `klaxon_store`'s lease (`pull_schedules`), so one integration never has
//! two pulls at once, on one node or several. The timer worker calls [`sweep`] every
//! [`SWEEP_MS`]; tests call [`run_due`] with their injected clock instead.

use std::time::Duration;

use klaxon_core::error::{ApiError, ErrorCode};
use klaxon_core::model::Millis;
use klaxon_sources::http_pull::{Method, PageRequest, Pull, PullReport, PullSettings, check_page};
use klaxon_store::{Integration, ManualRefusal, PullRecord};
use serde_json::{Value, json};

use crate::state::{AppState, new_request_id, random_hex};

/// How often the timer worker looks for due pulls.
pub const SWEEP_MS: i64 = 1_000;
/// ING-228: a manual trigger at most this often per integration.
pub const MANUAL_COOLDOWN_MS: Millis = 60_000;
/// Added to a pull's worst-case duration to make its lease.
const LEASE_MARGIN_MS: Millis = 60_000;
/// ING-230: redirects followed per request.
const MAX_REDIRECTS: usize = 3;
/// Largest page body read; a larger one fails the page.
const MAX_PAGE_BYTES: usize = 5 * 1024 * 1024;
/// The pull error of a refused target (ING-230).
const ACCESS_DENIED: &str = "URL access denied";

/// Who started a pull (ING-229).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Schedule,
    Manual,
}

impl Trigger {
    fn as_str(self) -> &'static str {
        match self {
            Trigger::Schedule => "schedule",
            Trigger::Manual => "manual",
        }
    }
}

/// The first scheduled start after `now`: starts are `cycle` apart from the previous
/// *scheduled* start (ING-221), and starts missed meanwhile are skipped.
pub fn next_start(due: Millis, cycle_ms: Millis, now: Millis) -> Millis {
    let cycle = cycle_ms.max(1);
    if due > now {
        return due;
    }
    due + ((now - due) / cycle + 1) * cycle
}

fn lease_until(settings: Option<&PullSettings>, now: Millis) -> Millis {
    let worst = settings.map_or(0, |s| s.worst_case_seconds());
    now + worst.saturating_mul(1000) + LEASE_MARGIN_MS
}

fn parse_settings(text: &str) -> Result<PullSettings, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    PullSettings::from_json(&value).map_err(|e| e.message)
}

/// Claims every pull due at `now` (skipping the due start of a running one) and returns the
/// claimed integrations.
async fn claim_due(state: &AppState, now: Millis, holder: &str) -> Vec<Integration> {
    let due = match state.store.due_pulls(now).await {
        Ok(d) => d,
        Err(e) => {
            tracing::error!(error = %e, "looking for due pulls failed");
            return Vec::new();
        }
    };
    let mut claimed = Vec::new();
    for d in due {
        // ING-013: an account whose service state refuses events does not pull.
        if crate::saas::check_inbound(state, d.account_id).is_err() {
            continue;
        }
        let settings = parse_settings(&d.settings).ok();
        let cycle_ms = settings.as_ref().map_or(300, |s| s.cycle_seconds) * 1000;
        let due_at = d.next_due_at.unwrap_or(now);
        let next = next_start(due_at, cycle_ms, now);
        let got = state
            .store
            .claim_scheduled_pull(
                d.account_id,
                d.integration_id,
                d.next_due_at,
                next,
                now,
                lease_until(settings.as_ref(), now),
                holder,
            )
            .await;
        match got {
            Ok(true) => match state
                .store
                .integration(d.account_id, d.integration_id)
                .await
            {
                Ok(Some(i)) => claimed.push(i),
                Ok(None) => {}
                Err(e) => tracing::error!(error = %e, "cannot read a claimed pull integration"),
            },
            Ok(false) => {}
            Err(e) => tracing::error!(error = %e, integration_id = d.integration_id,
                "claiming a due pull failed"),
        }
    }
    claimed
}

/// The timer worker's sweep: claims due pulls and runs each in its own task.
pub async fn sweep(state: &AppState, now: Millis, holder: &str) {
    for integration in claim_due(state, now, holder).await {
        let state = state.clone();
        let holder = holder.to_owned();
        tokio::spawn(async move {
            run(&state, &integration, Trigger::Schedule, &holder).await;
        });
    }
}

/// Claims and runs every pull due at the clock's now, to the end (for tests and tools that
/// drive time themselves). Returns how many ran.
pub async fn run_due(state: &AppState) -> usize {
    let holder = format!("pull-{}", random_hex(6));
    let now = state.clock.now();
    let claimed = claim_due(state, now, &holder).await;
    let count = claimed.len();
    let mut set = tokio::task::JoinSet::new();
    for integration in claimed {
        let state = state.clone();
        let holder = holder.clone();
        set.spawn(async move { run(&state, &integration, Trigger::Schedule, &holder).await });
    }
    while set.join_next().await.is_some() {}
    count
}

/// ING-221: enabling an `http_pull` integration makes its next pull due at once.
pub async fn enabled(
    state: &AppState,
    account_id: i64,
    integration_id: i64,
) -> Result<(), ApiError> {
    let i = state
        .store
        .integration(account_id, integration_id)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    if i.is_some_and(|i| i.integration_type == "http_pull") {
        state
            .store
            .pull_due_now(account_id, integration_id, state.clock.now())
            .await
            .map_err(|e| ApiError::internal(e.to_string()))?;
    }
    Ok(())
}

/// ING-228: starts a pull now, in the background. Refused within 60 s of the previous
/// manual trigger (429) and while a pull runs (400 `pull in progress`).
pub async fn trigger(state: &AppState, integration: Integration) -> Result<Value, ApiError> {
    if integration.integration_type != "http_pull" {
        return Err(ApiError::invalid(
            "integration_id is not an http_pull integration",
        ));
    }
    if !integration.enabled {
        return Err(ApiError::invalid("integration is disabled"));
    }
    crate::saas::check_inbound(state, integration.account_id)?;
    let settings = parse_settings(&integration.settings).ok();
    let now = state.clock.now();
    let holder = format!("pull-manual-{}", random_hex(6));
    let claim = state
        .store
        .claim_manual_pull(
            integration.account_id,
            integration.integration_id,
            now,
            MANUAL_COOLDOWN_MS,
            lease_until(settings.as_ref(), now),
            &holder,
        )
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    match claim {
        Ok(()) => {}
        Err(ManualRefusal::TooFrequent) => {
            return Err(ApiError::new(
                ErrorCode::RequestTooFrequently,
                "a manual pull of this integration was triggered less than 60 s ago",
            ));
        }
        Err(ManualRefusal::InProgress) => return Err(ApiError::invalid("pull in progress")),
    }
    let task_state = state.clone();
    tokio::spawn(async move {
        run(&task_state, &integration, Trigger::Manual, &holder).await;
    });
    Ok(json!({ "started_at": crate::wire::secs(now) }))
}

/// Runs one claimed pull to its end and records it; never fails (the record says how it went).
pub async fn run(
    state: &AppState,
    integration: &Integration,
    trigger: Trigger,
    holder: &str,
) -> PullReport {
    let started = state.clock.now();
    let account = integration.account_id;
    let id = integration.integration_id;
    let (report, used_last) = match parse_settings(&integration.settings) {
        Ok(settings) => pull(state, integration, &settings, started).await,
        Err(e) => (
            failed(format!("the stored settings are invalid: {e}")),
            None,
        ),
    };
    let success = report.status == klaxon_sources::http_pull::PullStatus::Success;
    let record = PullRecord {
        seq: 0,
        integration_id: id,
        started_at: started,
        ended_at: state.clock.now(),
        trigger: trigger.as_str().into(),
        status: report.status.as_str().into(),
        pages: i64::from(report.pages),
        items_received: report.items_received as i64,
        items_accepted: report.items_accepted as i64,
        items_skipped: report.items_skipped as i64,
        items_truncated: report.items_truncated as i64,
        error: report.error.clone(),
    };
    // ING-227: only a pull without failure moves `.LastPullTime` (to its own `.NowTime`);
    // after a failure it stays what this pull used, which the first pull fixes at
    // `.NowTime − cycle` (ING-222), so the next pull asks for the same range again.
    let advance = if success {
        Some(crate::wire::secs(started))
    } else {
        used_last
    };
    if let Err(e) = state
        .store
        .finish_pull(account, &record, holder, advance)
        .await
    {
        tracing::error!(error = %e, integration_id = id, "cannot record a finished pull");
    }
    metrics::counter!("klaxon_pull_runs_total", "status" => report.status.as_str()).increment(1);
    metrics::counter!("klaxon_pull_items_accepted_total").increment(report.items_accepted as u64);
    if !success {
        tracing::warn!(integration_id = id, status = report.status.as_str(),
            error = %report.error, "http pull did not succeed");
    }
    report
}

fn failed(error: String) -> PullReport {
    PullReport {
        status: klaxon_sources::http_pull::PullStatus::Failed,
        pages: 0,
        items_received: 0,
        items_accepted: 0,
        items_skipped: 0,
        items_truncated: 0,
        error,
    }
}

/// Runs the pages of one pull; the report and the `.LastPullTime` it used (none when it
/// did not get that far).
async fn pull(
    state: &AppState,
    integration: &Integration,
    settings: &PullSettings,
    started: Millis,
) -> (PullReport, Option<i64>) {
    // ING-231: a shared integration whose routes name no channel fetches nothing.
    if let Err(e) = crate::push::push_channels(state, integration, &[]).await {
        return (failed(e.message), None);
    }
    let last = match state
        .store
        .last_pull_time(integration.account_id, integration.integration_id)
        .await
    {
        Ok(t) => t,
        Err(e) => return (failed(format!("cannot read the last pull time: {e}")), None),
    };
    let deny_private = state.config.pull.deny_private_targets;
    let client = match client(settings, deny_private) {
        Ok(c) => c,
        Err(e) => return (failed(e), None),
    };
    let request_id = new_request_id();
    let mut pull = Pull::new(settings, crate::wire::secs(started), last);
    while let Some(next) = pull.next_request() {
        let req = match next {
            Ok(r) => r,
            Err(e) => {
                pull.on_failure(e);
                break;
            }
        };
        let mut attempt = 0;
        let body = loop {
            match fetch(&client, &req, settings, deny_private).await {
                Ok(body) => break Ok(body),
                // A refused target stays refused: no retry.
                Err(e) if e == ACCESS_DENIED => break Err(e),
                Err(e) if attempt >= settings.retry_count => break Err(e),
                Err(_) => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(state.config.pull.retry_delay_ms))
                        .await;
                }
            }
        };
        match body {
            Ok(body) => {
                let now = state.clock.now();
                let events = pull.on_page(&body, integration.integration_id, now);
                if let Err(e) =
                    crate::push::commit(state, &request_id, integration, events, now).await
                {
                    pull.on_failure(format!("cannot queue the items: {}", e.message));
                }
            }
            Err(e) => pull.on_failure(e),
        }
    }
    (pull.report(), Some(pull.vars().last_pull))
}

fn client(settings: &PullSettings, deny_private: bool) -> Result<reqwest::Client, String> {
    klaxon_notify::install_crypto_provider();
    let timeout = Duration::from_secs(settings.timeout);
    let mut builder = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        // Redirects are followed by hand, each hop re-checked (ING-230).
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .user_agent(concat!("klaxon-pull/", env!("CARGO_PKG_VERSION")));
    if let Some(r) = klaxon_notify::guard::resolver(!deny_private) {
        builder = builder.dns_resolver(r);
    }
    builder
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))
}

fn target(raw: &str, deny_private: bool) -> Result<reqwest::Url, String> {
    let url = reqwest::Url::parse(raw).map_err(|e| format!("invalid URL: {e}"))?;
    klaxon_notify::guard::check_url(&url, !deny_private).map_err(|e| {
        if url.scheme() == "http" || url.scheme() == "https" {
            ACCESS_DENIED.to_owned()
        } else {
            e
        }
    })?;
    Ok(url)
}

/// One attempt at one page: follows up to three redirects, then checks the page (ING-223).
async fn fetch(
    client: &reqwest::Client,
    req: &PageRequest,
    settings: &PullSettings,
    deny_private: bool,
) -> Result<Value, String> {
    let mut url = target(&req.url, deny_private)?;
    let mut method = req.method;
    let mut body = req.body.clone();
    let mut hops = 0;
    loop {
        let mut builder = match method {
            Method::Get => client.get(url.clone()),
            Method::Post => client.post(url.clone()),
        };
        builder = builder.timeout(Duration::from_secs(settings.timeout));
        for (name, value) in &req.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        builder = builder.header("Accept", "application/json");
        if let Some(b) = &body {
            builder = builder
                .header("Content-Type", "application/json")
                .body(b.clone());
        }
        let resp = builder.send().await.map_err(|e| describe(&e))?;
        let status = resp.status();
        if status.is_redirection()
            && let Some(location) = resp.headers().get(reqwest::header::LOCATION)
        {
            if hops >= MAX_REDIRECTS {
                return Err("too many redirects".into());
            }
            hops += 1;
            let location = location
                .to_str()
                .map_err(|_| "the redirect location is invalid".to_owned())?;
            let next = url
                .join(location)
                .map_err(|e| format!("the redirect location is invalid: {e}"))?;
            url = target(next.as_str(), deny_private)?;
            // 301/302/303 turn a POST into a GET without body, like browsers and curl -L.
            if matches!(status.as_u16(), 301..=303) {
                method = Method::Get;
                body = None;
            }
            continue;
        }
        let content_type = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = read_limited(resp).await?;
        return check_page(status.as_u16(), content_type.as_deref(), &bytes);
    }
}

async fn read_limited(mut resp: reqwest::Response) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| describe(&e))? {
        if out.len() + chunk.len() > MAX_PAGE_BYTES {
            return Err("the response body is larger than 5 MiB".into());
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// A request error as a history message; a name the guard resolved to no public address is
/// the refused target of ING-230.
fn describe(e: &reqwest::Error) -> String {
    let mut chain = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        chain.push_str(": ");
        chain.push_str(&s.to_string());
        source = std::error::Error::source(s);
    }
    if chain.contains("resolves to no public address") {
        return ACCESS_DENIED.to_owned();
    }
    if e.is_timeout() {
        return "timeout".into();
    }
    chain
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_follow_the_previous_scheduled_start() {
        // spec: ING-221
        assert_eq!(next_start(1_000, 300_000, 1_000), 301_000);
        assert_eq!(next_start(1_000, 300_000, 5_000), 301_000);
        // Starts missed while the node was busy are skipped, the grid is kept.
        assert_eq!(next_start(1_000, 300_000, 700_000), 901_000);
        assert_eq!(next_start(10_000, 300_000, 5_000), 10_000);
    }
}
