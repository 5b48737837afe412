//! Klaxon's HTTP server and worker runtime.
//!
//! [`start`] opens the store, applies migrations, performs the first-start bootstrap, binds
//! the listener and spawns the HTTP server and the inbox worker. The returned [`Server`] is
//! stopped with [`Server::shutdown`], which stops accepting, finishes in-flight requests and
//! lets the group committer commit what it already accepted.

// The wire objects are wide `json!` literals.
#![recursion_limit = "256"]

mod acting;
pub mod agreements;
mod audit;
pub mod backup;
mod calendar;
mod changes;
mod chatbots;
pub mod config;
mod console;
mod custom_actions;
mod delivery;
mod dingtalk;
mod envelope;
mod export;
mod feishu;
mod health;
mod im_callback;
mod keycache;
mod limits;
mod mapping_api;
mod notices;
mod openapi;
mod operator;
mod operator_tenant;
mod password_reset;
mod phone;
mod pull;
mod push;
mod registration;
mod retention;
mod saas;
mod signin;
mod signin_code;
mod signing_keys;
pub mod sla;
mod slack;
mod smtp;
mod sources;
mod sso;
mod sso_cas;
mod sso_ldap;
#[cfg(feature = "saml")]
mod sso_saml;
mod state;
pub mod support;
mod teams_app;
pub mod ticket_sync;
pub mod ticket_sync_sdp;
mod timers;
mod war_room;
pub mod webhooks;
mod wecom;
mod wire;
mod worker;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use klaxon_store::{Bootstrap, BootstrapSeed, Store, StoreOptions};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use config::Config;
/// The export package a cross-region transfer hands over (`klaxon admin tenant transfer`).
pub use export::{Archive, ArchiveMeta, TransferRegions, build_archive};

/// The OpenAPI 3.1 document of the server, as served at `/openapi.json` and committed as
/// `docs/openapi.json` (`klaxon openapi` prints it).
pub fn openapi_document() -> String {
    openapi::document::rendered()
}
pub use state::{Clock, SystemClock};

use crate::state::AppState;

/// A running node.
pub struct Server {
    local_addr: SocketAddr,
    base_url: String,
    bootstrap: Bootstrap,
    owner_password: Option<String>,
    shutdown_tx: watch::Sender<bool>,
    http: JoinHandle<std::io::Result<()>>,
    worker: JoinHandle<()>,
    timers: JoinHandle<()>,
    delivery: JoinHandle<()>,
    smtp: Option<(SocketAddr, JoinHandle<()>)>,
    saas_worker: JoinHandle<()>,
    support_worker: JoinHandle<()>,
    notice_worker: JoinHandle<()>,
    saas: Option<Arc<saas::SaasRuntime>>,
    store: Store,
    state: AppState,
}

impl Server {
    /// The node's store handle (tests drive timers through it with an injected clock).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Runs every HTTP pull due at the injected clock's now, to the end (ingest.md ING-221),
    /// and returns how many ran: tests drive pull schedules with it, as the timer worker does.
    pub async fn run_due_pulls(&self) -> usize {
        pull::run_due(&self.state).await
    }

    /// The billing settings in SaaS mode; `None` self-hosted.
    pub fn saas_settings(&self) -> Option<&klaxon_store::SaasSettings> {
        self.saas.as_ref().map(|s| &s.settings)
    }

    /// Adds this node's SLA request counts to the store now (the SaaS worker does it every
    /// few seconds): for tests and operator tools in this process.
    pub async fn flush_sla_counts(&self) {
        sla::flush(&self.state).await;
    }

    /// Reloads this node's tenant-state cache now (the SaaS worker does it every 500 ms):
    /// for tests and for operator actions made through this process.
    pub async fn refresh_tenant_states(&self) -> Result<(), klaxon_store::SaasFailure> {
        match &self.saas {
            Some(s) => s.refresh(&self.store).await,
            None => Ok(()),
        }
    }

    /// Ends the service of tenants whose refusal of a version has taken effect (SVC-038), as
    /// the SaaS worker does every 500 ms, and reloads the caches: for tests.
    pub async fn end_refused_due(&self) -> Result<(), klaxon_store::SaasFailure> {
        if let Some(s) = &self.saas {
            self.store
                .saas_end_refused_due(&s.settings, self.state.clock.now())
                .await?;
            s.refresh(&self.store).await?;
        }
        Ok(())
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Where the SMTP receiver listens, when `[smtp] listen` is set.
    pub fn smtp_addr(&self) -> Option<SocketAddr> {
        self.smtp.as_ref().map(|(addr, _)| *addr)
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// What the first start created (or found).
    pub fn bootstrap(&self) -> &Bootstrap {
        &self.bootstrap
    }

    /// The owner's generated password, only on the start that created it.
    pub fn owner_password(&self) -> Option<&str> {
        self.owner_password.as_deref()
    }

    /// A few lines for the terminal: where to log in, the APP key, and a curl that pushes a
    /// test alert.
    pub fn banner(&self) -> String {
        let b = &self.bootstrap;
        let url = &self.base_url;
        let mut out = String::new();
        out.push_str(&format!("Klaxon is listening on {url}\n"));
        out.push_str(&format!("  Open:        {url}/\n"));
        match &self.owner_password {
            Some(pw) => out.push_str(&format!(
                "  Owner:       {} / {pw}  (the password is shown only now; keep it)\n",
                b.owner_email
            )),
            None => out.push_str(&format!(
                "  Owner:       {} (password printed at the first start)\n",
                b.owner_email
            )),
        }
        if b.app_key.is_empty() {
            out.push_str(
                "  APP keys:    stored hashed, the first one was printed at the first start; sign in and POST /app-key/create for a new one\n",
            );
        } else {
            out.push_str(&format!(
                "  APP key:     {}  (Open API: ?app_key=… or Authorization: Bearer …; shown only now)\n",
                b.app_key
            ));
        }
        out.push_str(&format!(
            "  Push alerts: {url}/event/push/alert/standard?integration_key={}\n",
            b.integration_key
        ));
        out.push_str("  Try it:\n");
        out.push_str(&format!(
            "    curl -sS -X POST '{url}/event/push/alert/standard?integration_key={}' \\\n      -H 'Content-Type: application/json' \\\n      -d '{{\"event_status\":\"Critical\",\"title_rule\":\"CPU high on $host\",\"alert_key\":\"cpu-web-1\",\"labels\":{{\"host\":\"web-1\"}}}}'\n",
            b.integration_key
        ));
        out
    }

    /// Graceful stop: no new connections, in-flight requests finish, accepted events are
    /// committed, the worker stops after its current batch.
    pub async fn shutdown(self) {
        let _ = self.shutdown_tx.send(true);
        match tokio::time::timeout(Duration::from_secs(30), self.http).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => tracing::warn!(error = %e, "http server ended with an error"),
            Ok(Err(e)) => tracing::warn!(error = %e, "http server task failed"),
            Err(_) => tracing::warn!("http server did not stop within 30 s"),
        }
        let _ = self.worker.await;
        let _ = self.timers.await;
        let _ = self.delivery.await;
        let _ = self.saas_worker.await;
        // Requests that finished after the SLA worker's last flush.
        sla::flush(&self.state).await;
        let _ = self.support_worker.await;
        let _ = self.notice_worker.await;
        if let Some((_, smtp)) = self.smtp {
            let _ = smtp.await;
        }
        self.store.close().await;
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot open the database: {0}")]
    Store(#[from] klaxon_store::StoreError),
    #[error("notification delivery: {0}")]
    Notify(String),
    #[error("{0}")]
    Deployment(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// Opens the store and applies migrations; nothing else (`klaxon migrate`).
pub async fn open_store(config: &Config) -> Result<Store, StartError> {
    if config.database_url.is_empty() {
        std::fs::create_dir_all(&config.data_dir).map_err(|source| StartError::DataDir {
            path: config.data_dir.display().to_string(),
            source,
        })?;
    }
    let options = StoreOptions {
        max_connections: config.storage.max_connections,
        sqlite_synchronous_full: config.storage.sqlite_synchronous_full,
        key_encryption_key: config.deployment.kek().map_err(StartError::Deployment)?,
        ..StoreOptions::default()
    };
    let store = Store::connect(&config.effective_database_url(), options).await?;
    store.migrate().await?;
    Ok(store)
}

/// Starts a node with the system clock.
pub async fn start(config: Config) -> Result<Server, StartError> {
    start_with_clock(config, Arc::new(SystemClock)).await
}

/// Starts a node with an injected clock.
pub async fn start_with_clock(config: Config, clock: Arc<dyn Clock>) -> Result<Server, StartError> {
    // Install the metrics recorder before anything records, and rustls' ring provider before
    // any TLS client is built (DESIGN.md: ring only).
    let _ = health::prometheus();
    klaxon_notify::install_crypto_provider();
    // SVC-400: a SaaS deployment refuses to start without its operator settings; a
    // self-hosted one checks nothing here.
    let saas_settings = config
        .deployment
        .saas_settings()
        .map_err(StartError::Deployment)?;
    let store = open_store(&config).await?;
    // Credentials stored in clear (before a key-encryption key was configured, or by an
    // earlier version) are sealed once, before the first request is served.
    let sealed = store.seal_stored_secrets(clock.now()).await?;
    if sealed > 0 {
        tracing::info!(
            sealed,
            "sealed stored credentials under the tenants' data keys"
        );
    }
    let seed = BootstrapSeed {
        account_name: "My Organization".to_string(),
        owner_email: "owner@klaxon.local".to_string(),
        owner_name: "Owner".to_string(),
        owner_password: state::random_token(12),
        app_key: state::random_hex(16),
        integration_key: state::random_hex(16),
    };
    let bootstrap = store.bootstrap(&seed, clock.now()).await?;
    let owner_password = bootstrap.created.then(|| seed.owner_password.clone());

    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| StartError::Bind {
            addr: config.listen,
            source,
        })?;
    let local_addr = listener.local_addr().map_err(|source| StartError::Bind {
        addr: config.listen,
        source,
    })?;
    let base_url = config.base_url(local_addr);

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let mut state = AppState::new(config.clone(), store.clone(), clock);
    state.base_url = Arc::from(base_url.trim_end_matches('/'));
    if let Some(settings) = saas_settings {
        let runtime = Arc::new(saas::SaasRuntime::new(settings));
        // Load the tenant states before the first request is served.
        runtime
            .refresh(&store)
            .await
            .map_err(|e| StartError::Deployment(format!("cannot load tenant states: {e}")))?;
        state.saas = Some(runtime);
    }
    let saas = state.saas.clone();
    let saas_worker = {
        let states = saas::run(state.clone(), shutdown_rx.clone());
        // SVC-272: this node's SLA request counts go to the store every few seconds.
        let counts = sla::run(state.clone(), shutdown_rx.clone());
        tokio::spawn(async move {
            tokio::join!(states, counts);
        })
    };
    let support_worker = tokio::spawn(support::run(state.clone(), shutdown_rx.clone()));
    let notice_worker = tokio::spawn(notices::run(state.clone(), shutdown_rx.clone()));
    // A bad [notify] section stops the start before any worker runs, even on a node that
    // does not deliver, so it shows before delivery is turned on anywhere.
    config.notify.validate().map_err(StartError::Notify)?;
    let deliverer = if config.workers.delivery {
        let holder = format!("delivery-{}", state::random_hex(6));
        Some({
            let d = klaxon_notify::Deliverer::new(
                store.clone(),
                config.notify.clone(),
                &state.base_url,
                &holder,
            )
            .map_err(StartError::Notify)?;
            if config.workers.inbox {
                // The inbox batches of this node claim the notifications they queue for this
                // deliverer and hand them over after their commit (see `delivery::run`).
                store.hand_off_deliveries_to(&holder, config.notify.concurrency);
            }
            // SVC-072/074: in SaaS mode each metered unit is covered before it is sent.
            match &state.saas {
                Some(saas) => d.with_metering(
                    saas.settings.clone(),
                    config.deployment.communication_plan().unwrap_or_default(),
                ),
                None => d,
            }
        })
    } else {
        None
    };
    let worker = if config.workers.inbox {
        tokio::spawn(worker::run(state.clone(), shutdown_rx.clone()))
    } else {
        tracing::warn!("the inbox worker is off on this node (workers.inbox = false)");
        tokio::spawn(async {})
    };
    let timers = if config.workers.timers {
        // The incident retention sweep is later work too; it runs beside the timers.
        let steps = timers::run(state.clone(), shutdown_rx.clone());
        let sweeps = retention::run(state.clone(), shutdown_rx.clone());
        tokio::spawn(async move {
            tokio::join!(steps, sweeps);
        })
    } else {
        tokio::spawn(async {})
    };
    let delivery = match deliverer {
        Some(deliverer) => {
            // Outbound webhooks (response.md §2.23) go out from the same nodes.
            let holder = format!("webhooks-{}", state::random_hex(6));
            let dispatcher = webhooks::WebhookDispatcher::new(
                store.clone(),
                &state.base_url,
                &holder,
                config.notify.allow_private_targets || config.notify.webhook_private_targets,
            )
            .map_err(StartError::Notify)?;
            // Ticket sync (RSP-405, RSP-406) too: its service URLs are tenant input like
            // webhook endpoints.
            let tickets = ticket_sync::TicketDispatcher::new(
                store.clone(),
                &format!("tickets-{}", state::random_hex(6)),
                config.notify.allow_private_targets || config.notify.webhook_private_targets,
            )
            .map_err(StartError::Notify)?;
            let notifications = delivery::run(state.clone(), deliverer, shutdown_rx.clone());
            let hooks = webhooks::run(state.clone(), dispatcher, shutdown_rx.clone());
            let tickets = ticket_sync::run(state.clone(), tickets, shutdown_rx.clone());
            tokio::spawn(async move {
                tokio::join!(notifications, hooks, tickets);
            })
        }
        None => tokio::spawn(async {}),
    };
    let smtp = match config.smtp.listen {
        Some(addr) => {
            let listener = TcpListener::bind(addr)
                .await
                .map_err(|source| StartError::Bind { addr, source })?;
            let bound = listener
                .local_addr()
                .map_err(|source| StartError::Bind { addr, source })?;
            Some((
                bound,
                tokio::spawn(smtp::run(state.clone(), listener, shutdown_rx.clone())),
            ))
        }
        None => None,
    };
    let node_state = state.clone();
    let app = router(state);
    let mut rx = shutdown_rx;
    let http = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            let _ = rx.wait_for(|stop| *stop).await;
        })
        .await
    });
    Ok(Server {
        local_addr,
        base_url,
        bootstrap,
        owner_password,
        shutdown_tx,
        http,
        worker,
        timers,
        delivery,
        smtp,
        saas_worker,
        support_worker,
        notice_worker,
        saas,
        store,
        state: node_state,
    })
}

fn router(state: AppState) -> Router {
    // The operator API exists on SaaS nodes only (SVC-4xx: a self-hosted install has no
    // staff); elsewhere its paths are unknown routes.
    let operator = if state.saas.is_some() {
        operator::routes()
    } else {
        Router::new()
    };
    // Registration likewise (docs/registration.md): a self-hosted install creates tenants
    // only at first start, so `/register` and `/auth/register/*` are unknown routes there.
    let registration = if state.saas.is_some() {
        registration::routes().merge(console::register::routes())
    } else {
        Router::new()
    };
    Router::new()
        .merge(operator)
        .merge(registration)
        // SVC-272: requests to the public API (push and Open API) count for the SLA.
        .merge(push::routes().layer(axum::middleware::from_fn_with_state(
            state.clone(),
            sla::count,
        )))
        .merge(
            openapi::routes().layer(axum::middleware::from_fn_with_state(
                state.clone(),
                sla::count,
            )),
        )
        .merge(health::routes())
        .merge(signing_keys::routes())
        .merge(console::routes())
        .merge(calendar::routes())
        .merge(export::routes())
        .merge(signin::routes())
        .merge(sso::routes())
        .merge(slack::routes())
        .merge(feishu::routes())
        .merge(wecom::routes())
        .merge(dingtalk::routes())
        .merge(teams_app::routes())
        .merge(phone::routes())
        .merge(ticket_sync::routes())
        .fallback(envelope::route_not_found)
        // Push bodies are limited and reported by the handlers themselves (ING-006).
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
}
