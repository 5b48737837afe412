//! Shared state of the handlers and workers.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use klaxon_core::model::Millis;
use klaxon_store::Store;
use rand::Rng;
use tokio::sync::Notify;

use crate::config::Config;
use crate::keycache::KeyCache;
use crate::limits::Limiter;

/// The platform clock, injected so tests drive time.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Millis;
}

#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Millis {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }
}

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub limiter: Arc<Limiter>,
    pub keys: Arc<KeyCache>,
    /// Wakes the inbox worker after a commit, so processing follows acceptance without a
    /// polling delay on this node.
    pub inbox_ready: Arc<Notify>,
    /// Wakes the delivery worker after a change that may have queued notifications (inbox
    /// processing, a timer step, an incident action).
    pub delivery_ready: Arc<Notify>,
    /// Wakes the outbound webhook worker the same way: the change that queues notifications
    /// also queues webhook events, and a poll would add up to its interval to every event.
    pub webhook_ready: Arc<Notify>,
    /// The node's public base URL (`Config::base_url` of the bound address, no trailing
    /// slash), for links such as calendar feed URLs. Set by `start` once the listener is bound.
    pub base_url: Arc<str>,
    /// Sign-in attempts admitted on this node in the last second (`auth.attempts_per_second`):
    /// bounds the CPU spent on password hashes (docs/sign-in.md).
    pub signin_window: Arc<std::sync::Mutex<klaxon_core::ratelimit::RollingWindow>>,
    /// SaaS mode only (`deployment.mode = "saas"`); `None` self-hosted, where no
    /// service-agreement check exists at all.
    pub saas: Option<Arc<crate::saas::SaasRuntime>>,
    /// Outbound HTTP of the IM interactivity endpoints (Slack's `response_url`), with the
    /// delivery engine's timeout and address guard.
    pub im_http: klaxon_notify::providers::HttpProviders,
}

impl AppState {
    pub fn new(config: Config, store: Store, clock: Arc<dyn Clock>) -> Self {
        let limiter = Arc::new(Limiter::new(config.limits, config.api_limits));
        let signin_window = Arc::new(std::sync::Mutex::new(
            klaxon_core::ratelimit::RollingWindow::new(config.auth.attempts_per_second, 1000),
        ));
        let im_http = klaxon_notify::providers::HttpProviders::lazy(
            config.notify.timeout_ms,
            config.notify.allow_private_targets,
        );
        AppState {
            im_http,
            config: Arc::new(config),
            store,
            clock,
            limiter,
            keys: Arc::new(KeyCache::default()),
            inbox_ready: Arc::new(Notify::new()),
            delivery_ready: Arc::new(Notify::new()),
            webhook_ready: Arc::new(Notify::new()),
            signin_window,
            base_url: Arc::from(""),
            saas: None,
        }
    }
}

impl AppState {
    /// Wakes this node's senders after a commit that may have queued notifications or
    /// webhook events (inbox processing, a timer step, an incident action).
    pub fn wake_senders(&self) {
        self.delivery_ready.notify_one();
        self.webhook_ready.notify_one();
    }
}

/// `n` random bytes as lower-case hex.
pub fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    rand::rng().fill(&mut bytes[..]);
    hex::encode(bytes)
}

/// A human-typable random password from an unambiguous alphabet.
pub fn random_token(len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

/// A new 32-hex request id (ING-008).
pub fn new_request_id() -> String {
    random_hex(16)
}
