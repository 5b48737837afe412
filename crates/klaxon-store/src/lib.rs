//! Klaxon's storage: one [`Store`] over embedded SQLite (default) or PostgreSQL.
//!
//! Every tenant-owned read takes the `account_id`: there is no unscoped query a handler could
//! forget to filter (DESIGN.md principle 6).
//!
//! Layout:
//! - `records` — the rows the API reads (account, member, channel, integration) and filters;
//! - `inbox` — hop 1: accepted events appended with group commit;
//! - `process` — hop 2: the inbox consumer under a lease, calling the core's decisions;
//! - `query` — the read side for the Open API lists.

pub mod records;

use klaxon_core::model::{Alert, EventOrigin, Incident, Millis, NewEvent, StoredEvent};
pub use records::*;

/// Which database a [`Store`] runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(String),
    #[error("corrupt row: {0}")]
    Corrupt(String),
    #[error("the store is shutting down")]
    Closed,
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// Tuning for [`Store::connect`].
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Maximum connections of the read pool (PostgreSQL: of the whole pool).
    pub max_connections: u32,
    /// SQLite `synchronous`: `FULL` (default: a commit survives power loss) or `NORMAL`
    /// (survives a process crash only).
    pub sqlite_synchronous_full: bool,
    /// Most events one group commit appends.
    pub max_group_commit: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            max_connections: 8,
            sqlite_synchronous_full: true,
            max_group_commit: 2048,
        }
    }
}

/// The store handle; cheap to clone.
#[derive(Clone)]
pub struct Store {
    _private: (),
}

impl Store {
    /// Opens `sqlite://path/to/file.db` (created if missing, WAL) or `postgres://…`.
    pub async fn connect(url: &str, options: StoreOptions) -> Result<Store> {
        let _ = (url, options);
        Err(StoreError::Closed)
    }

    pub fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    /// Applies this backend's migrations (idempotent).
    pub async fn migrate(&self) -> Result<()> {
        Ok(())
    }

    /// Cheap liveness probe of the database (for `/readyz`).
    pub async fn ping(&self) -> Result<()> {
        Ok(())
    }

    /// First start: creates the account, its owner member with `owner_password` (stored as an
    /// argon2 hash), the APP key, a default channel and a standard integration in it — once.
    /// Later starts create nothing and return `created = false` with the existing keys.
    pub async fn bootstrap(&self, seed: &BootstrapSeed, now: Millis) -> Result<Bootstrap> {
        let _ = (seed, now);
        Err(StoreError::Closed)
    }

    /// Resolves a push key (ING-005). Deleted integrations do not resolve.
    pub async fn integration_by_key(&self, integration_key: &str) -> Result<Option<Integration>> {
        let _ = integration_key;
        Ok(None)
    }

    /// Resolves an APP key (openapi-compat.md 1.2) to the member it acts as.
    pub async fn app_key(&self, app_key: &str) -> Result<Option<AppKeyOwner>> {
        let _ = app_key;
        Ok(None)
    }

    /// Appends accepted events to the inbox durably and sets each integration's
    /// `last_event_time` (ING-260). Concurrent callers share one transaction and one commit
    /// (group commit); the future completes only after that commit.
    pub async fn enqueue(&self, events: Vec<(EventOrigin, NewEvent)>) -> Result<()> {
        let _ = events;
        Err(StoreError::Closed)
    }

    /// Processes up to `limit` inbox events in arrival order in one transaction, if this node
    /// holds (or takes) the processing lease. Returns how many were processed.
    pub async fn process_inbox(&self, holder: &str, limit: usize, now: Millis) -> Result<usize> {
        let _ = (holder, limit, now);
        Ok(0)
    }

    /// Number of events waiting in the inbox.
    pub async fn inbox_depth(&self) -> Result<i64> {
        Ok(0)
    }

    pub async fn account(&self, account_id: i64) -> Result<Option<Account>> {
        let _ = account_id;
        Ok(None)
    }

    pub async fn member(&self, account_id: i64, member_id: i64) -> Result<Option<Member>> {
        let _ = (account_id, member_id);
        Ok(None)
    }

    pub async fn list_channels(
        &self,
        account_id: i64,
        filter: &ChannelFilter,
    ) -> Result<Page<Channel>> {
        let _ = (account_id, filter);
        Ok(Page::default())
    }

    pub async fn incident(&self, account_id: i64, incident_id: &str) -> Result<Option<Incident>> {
        let _ = (account_id, incident_id);
        Ok(None)
    }

    pub async fn list_incidents(
        &self,
        account_id: i64,
        filter: &IncidentFilter,
    ) -> Result<Page<Incident>> {
        let _ = (account_id, filter);
        Ok(Page::default())
    }

    pub async fn alert(&self, account_id: i64, alert_id: &str) -> Result<Option<Alert>> {
        let _ = (account_id, alert_id);
        Ok(None)
    }

    pub async fn list_alerts(&self, account_id: i64, filter: &AlertFilter) -> Result<Page<Alert>> {
        let _ = (account_id, filter);
        Ok(Page::default())
    }

    pub async fn list_events(
        &self,
        account_id: i64,
        filter: &EventFilter,
    ) -> Result<Page<StoredEvent>> {
        let _ = (account_id, filter);
        Ok(Page::default())
    }

    /// Stops the group committer after it has committed everything already handed to it.
    pub async fn close(&self) {}
}
