//! Klaxon's storage: one [`Store`] over embedded SQLite (default) or PostgreSQL.
//!
//! Every tenant-owned read takes the `account_id`: there is no unscoped query a handler could
//! forget to filter (DESIGN.md principle 6).
//!
//! Layout:
//! - `records` — the rows the API reads (account, member, channel, integration) and filters;
//! - `db` — pools (SQLite: one writer + readers per file; PostgreSQL: one pool), migrations, a
//!   small builder for SQL with `$n` placeholders;
//! - `bootstrap` — the first start;
//! - `inbox` — hop 1: accepted events appended with group commit; on SQLite in a database
//!   file of its own (`<stem>-inbox.db` beside the main file) with its own writer, so accepting
//!   never waits for processing; the exactly-once watermark (ING-011);
//! - `process` — hop 2: the inbox consumer under a lease, calling the core's decisions;
//! - `query` — the read side for the Open API lists;
//! - `rows` — row ↔ model mapping and whole-row upserts;
//! - `schedules` — on-call schedules, one row each with the core definition as JSON;
//! - `calendars` — service calendars, holiday sets, the reference checks of RSP-234/RSP-273;
//! - `directory` — members and teams (invite, delete, teams and their members);
//! - `routes` — route versions of shared integrations (ING-095); `routing` — stage 6 of the
//!   processing batch (ING-091…094).
//!
//! Both backends run one code path over `sqlx::AnyPool` with portable SQL (`$n`
//! placeholders, BIGINT instants and booleans, JSON text for maps and lists); each has its own
//! migrations (`migrations/sqlite` plus `migrations/sqlite-inbox` for the SQLite inbox file,
//! `migrations/postgres`). APP keys and integration keys are
//! stored as given (they are shown again on later starts), member passwords as argon2 hashes.

mod action_links;
mod audit;
mod bootstrap;
mod calendars;
mod card_refresh;
mod changes;
mod channels;
mod contact_verification;
mod custom_actions;
mod db;
mod delivery;
mod directory;
mod enrichment;
mod export;
mod fields;
mod flapping;
mod halt;
mod id_map;
mod im;
mod im_cards;
mod im_conversations;
mod inbox;
mod insight;
mod insight_filters;
mod integrations;
mod list_columns;
mod login_codes;
mod mapping_services;
mod members;
mod noise;
mod password_reset;
mod phone;
mod pipeline;
mod preferences;
mod process;
mod pulls;
mod purge;
mod push_devices;
mod query;
pub mod records;
mod reminders;
mod response;
mod retention;
mod roles;
mod routes;
mod routing;
mod rows;
mod saas;
mod saml_sessions;
mod schedules;
pub mod sealing;
mod signin;
pub mod signing;
mod sso;
mod support;
mod templates;
mod ticket_sync;
mod war_rooms;
mod webhooks;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

pub use action_links::{ActionLinkTarget, NewActionLink};
pub use audit::{AuditFilter, AuditPage, AuditRecord, NewAuditRecord};
pub use calendars::{AccountCalendars, CalendarFilter, Referrers};
pub use card_refresh::{CARD_CHANNELS, CARD_REFRESH};
pub use changes::{ChangeEventRecord, ChangeFilter, ChangeRecord};
pub use channels::{ChannelDraft, ChannelSettings, EventSource};
pub use contact_verification::{ContactChange, ContactCodeIssue, ContactKind, ContactTarget};
pub use custom_actions::{
    CustomDraft, CustomIntegration, CustomRefusal, MAX_PER_CHANNEL as CUSTOM_PER_CHANNEL,
};
pub use delivery::{
    DELIVERY_CLAIM_MS, DeliveryOutcome, DeliveryState, MemberContact, PendingDelivery,
};
pub use directory::{
    APP_KEYS_PER_MEMBER, MemberBrief, MemberFilter, MemberKey, MemberOrder, MemberUpdate,
    NewMember, Outcome, Person, Refusal, Team, TeamFilter, TeamKey, TeamOrder, TeamWrite,
};
pub use enrichment::{EnrichmentRecord, MappingRefusal, MappingRow, SchemaRecord};
pub use export::{
    BeginExport, EXPORT_VALID_MS, EXPORTS_PER_DAY, ExportArchive, ExportRecord, ExportRefusal,
    ExportedTable, TABLES as EXPORT_TABLES, TableClass,
};
pub use fields::FieldRefusal;
pub use im::{ImIntegration, ImIntegrationDraft, ImLink, ImRefusal};
pub use im_cards::{CARD_CODE_LIFETIME_MS, ImCard};
pub use im_conversations::ImConversation;
pub use insight::TimelineFacts;
use klaxon_core::model::{
    Alert, EventOrigin, Incident, Millis, NewEvent, QueuedEvent, StoredEvent,
};
pub use login_codes::{CodeCandidate, CodePolicy, CodeUse};
pub use mapping_services::{ApiAnswers, ServiceRecord};
pub use noise::{EventOutcome, NoiseRefusal, OutcomeFilter};
pub use password_reset::{ResetDone, ResetPolicy};
pub use phone::{ReplyCode, ReplyTarget};
pub use pipeline::PipelineRecord;
pub use process::Processed;
pub use process::{LEASE_TTL_MS, RandomIds};
pub use pulls::{HISTORY_KEPT as PULL_HISTORY_KEPT, ManualRefusal, PullRecord, PullSchedule};
pub use purge::{
    BackupTable, NO_TENANT_COLUMN, PurgeCertificateRecord, PurgeOutcome, PurgedTable,
    TenantKeyRecord,
};
pub use push_devices::{MAX_PUSH_DEVICES, PushDevice};
pub use records::*;
pub use reminders::{ReminderSweep, SHIFT_REMINDER, STALE_MS as REMINDER_STALE_MS};
pub use response::{
    ActionContext, ActionResult, DueTimer, FeedEntry, MergeRefusal, OutboxEntry, ReorderRefusal,
    RuleRefusal, TIMER_CLAIM_MS,
};
pub use retention::{BulkDeletion, DeletionCounts, RetentionSweep};
pub use roles::{ActorRecord, RoleRecord, RoleWrite};
pub use routes::{RouteRefusal, RouteVersion};
pub use saas::{
    AcceptanceRecord, ActiveUser, Applied, BillingSettings, BuyLicences, ClosureRequest, CodeIssue,
    CommPlan, CommUnit, CycleStatement, Decided, DirectoryEntry, Disclosure, DocumentVersion,
    GrantRecord, LawfulRequest, LegalHoldRecord, LicenceGate, LicenceHolder, LicenceOrder,
    LicencePoolView, NewDecision, NewDocument, NewLawfulRequest, NewNotice, NewRegistration,
    NewSlaClaim, NoticeRecord, OwnershipTransfer, QueuedNotice, Registered, Renew, SLA_TEXT_MAX,
    SaasFailure, SaasSettings, SecurityIncidentRecord, SettlementRun, SlaClaim, SlaExclusion,
    SlaIncident, SlaUnreachable, StaffAccess, StaffRecord, TenantBilling, UsageRun, licence_sku,
    postpaid_sku, staff_actor,
};
pub use saas::{
    BREACH_CATEGORIES, CommPack, DORMANT_NOTICE_DAYS, DormantAction, MeterDecision, NewTermination,
    PackRecord, TerminationKind, TerminationRecord, pack_sku,
};
pub use saas::{
    ExportBlockLift, LiftExportBlock, NewTransferConsent, OrderAcceptance, PurchaseAcceptance,
    RegionProvider, TransferConsent, TransferImport, TransferImportRecord, TransferRecord,
    TransferRequest,
};
pub use saml_sessions::SamlSession;
pub use schedules::{ScheduleFilter, ScheduleRefusal};
pub use signin::{
    AppKeyInfo, AppKeyUse, LAST_USED_GRANULARITY_MS, LockoutPolicy, LoginCandidate, NewAppKey,
    NewSession, Session, hash_secret,
};
pub use sso::{SsoLogin, SsoMember, SsoSignInConfig};
pub use support::{IncomingMail, Received, SupportDesk, Ticket, TicketMessage};
pub use templates::TemplateRefusal;
pub use ticket_sync::{
    TICKET_CLAIM_MS, TicketDraft, TicketIntegration, TicketJob, TicketLink, TicketOutcome,
    TicketSettings, TicketTokens,
};
pub use war_rooms::{WAR_ROOM_SYNC, WarRoom, WarRoomInvitations, WarRoomRefusal};
pub use webhooks::{
    PendingWebhook, WEBHOOK_CLAIM_MS, WebhookAttempt, WebhookDeliveryState, WebhookDraft,
    WebhookHistoryFilter, WebhookHistoryItem, WebhookHistoryPage, WebhookIntegration,
};

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
    /// A `search_after_ctx` that this store did not issue for this list.
    #[error("invalid search_after_ctx")]
    InvalidCursor,
    /// A sealed credential cannot be sealed or opened (no key-encryption key, the tenant's
    /// data key destroyed by its purge, or a value that does not belong to its row).
    #[error("stored secret: {0}")]
    Secret(String),
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
    /// The deployment's key-encryption key: when set, stored credentials are sealed under
    /// each tenant's data key ([`sealing`]).
    pub key_encryption_key: Option<sealing::Kek>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            max_connections: 8,
            sqlite_synchronous_full: true,
            max_group_commit: 2048,
            key_encryption_key: None,
        }
    }
}

/// The store handle; cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    backend: Backend,
    read: sqlx::AnyPool,
    write: sqlx::AnyPool,
    /// SQLite: the inbox file. PostgreSQL: `None` (the inbox is a table of `read`/`write`).
    inbox: Option<inbox::InboxFile>,
    committer: inbox::Committer,
    /// Events processed by this handle, and the count at which PostgreSQL statistics are
    /// refreshed next (see [`Store::refresh_statistics`]).
    processed: AtomicU64,
    next_analyze: AtomicU64,
    /// Seals stored credentials when set ([`sealing`]).
    kek: Option<sealing::Kek>,
    /// Outbox rows the inbox batches claimed for this node's delivery worker.
    handoff: delivery::Handoff,
}

/// The first statistics refresh happens after this many processed events; each later one at
/// twice the previous count.
const FIRST_ANALYZE_AT: u64 = 1000;

impl Store {
    /// Opens `sqlite://path/to/file.db` (created if missing, WAL) or `postgres://…`.
    ///
    /// SQLite also opens (or creates) the inbox file beside the main one: `path/to/file.db` →
    /// `path/to/file-inbox.db`. The two files belong together (back them up together); an
    /// in-memory URL gets a second in-memory database for the inbox.
    pub async fn connect(url: &str, options: StoreOptions) -> Result<Store> {
        let pools = db::connect(url, &options).await?;
        let (inbox, committer) = match pools.inbox {
            Some(file) => {
                let trim = Arc::new(inbox::Trim::default());
                let committer = inbox::Committer::start(
                    file.write.clone(),
                    options.max_group_commit,
                    inbox::Mode::Separate {
                        trim: trim.clone(),
                        checkpoint: file.checkpoint.clone(),
                    },
                )?;
                let file = inbox::InboxFile {
                    read: file.read,
                    write: file.write,
                    checkpoint: file.checkpoint,
                    trim,
                };
                (Some(file), committer)
            }
            None => (
                None,
                inbox::Committer::start(
                    pools.write.clone(),
                    options.max_group_commit,
                    inbox::Mode::Shared,
                )?,
            ),
        };
        Ok(Store {
            inner: Arc::new(Inner {
                backend: pools.backend,
                read: pools.read,
                write: pools.write,
                inbox,
                committer,
                processed: AtomicU64::new(0),
                next_analyze: AtomicU64::new(FIRST_ANALYZE_AT),
                kek: options.key_encryption_key.clone(),
                handoff: delivery::Handoff::default(),
            }),
        })
    }

    pub fn backend(&self) -> Backend {
        self.inner.backend
    }

    /// Applies this backend's migrations (idempotent). SQLite: both files', then makes sure
    /// the inbox file numbers new events above what the main file has processed (ING-011).
    pub async fn migrate(&self) -> Result<()> {
        db::migrate(self.inner.backend, &self.inner.write).await?;
        // Migration 0013 on SQLite leaves plain APP keys to hash here.
        signin::hash_plain_app_keys(&self.inner.write).await?;
        // Migration 0071 leaves the push tokens of earlier ticket-sync rows to hash here.
        ticket_sync::hash_push_tokens(&self.inner.write).await?;
        if let Some(file) = &self.inner.inbox {
            db::migrate_inbox(&file.write).await?;
            inbox::reconcile(&self.inner.read, file).await?;
        }
        Ok(())
    }

    /// Cheap liveness probe of the database (for `/readyz`); SQLite: of both files.
    pub async fn ping(&self) -> Result<()> {
        query::ping(&self.inner.read).await?;
        if let Some(file) = &self.inner.inbox {
            query::ping(&file.read).await?;
        }
        Ok(())
    }

    /// First start: creates the account, its owner member with `owner_password` (stored as an
    /// argon2 hash), the APP key, a default channel and a standard integration in it — once.
    /// Later starts create nothing and return `created = false` with the existing keys.
    pub async fn bootstrap(&self, seed: &BootstrapSeed, now: Millis) -> Result<Bootstrap> {
        bootstrap::bootstrap(
            self.inner.backend,
            &self.inner.read,
            &self.inner.write,
            seed,
            now,
        )
        .await
    }

    /// Creates one more account (its owner member with `seed`'s password, the APP key, a
    /// default channel and a standard integration), unconditionally: for tests of tenant
    /// isolation, and the multi-tenant service. `created` is true.
    pub async fn create_account(&self, seed: &BootstrapSeed, now: Millis) -> Result<Bootstrap> {
        bootstrap::create_account(&self.inner.write, seed, now).await
    }

    /// Resolves a push key (ING-005). Deleted integrations do not resolve.
    pub async fn integration_by_key(&self, integration_key: &str) -> Result<Option<Integration>> {
        query::integration_by_key(&self.inner.read, integration_key).await
    }

    /// Resolves an APP key (openapi-compat.md 1.2) to the member it acts as.
    pub async fn app_key(&self, app_key: &str) -> Result<Option<AppKeyOwner>> {
        query::app_key(&self.inner.read, app_key).await
    }

    /// Appends accepted events to the inbox durably. Concurrent callers share one transaction
    /// and one commit (group commit); the future completes only after that commit.
    ///
    /// ING-260: on PostgreSQL the same transaction sets each integration's `last_event_time`;
    /// on SQLite the processing transaction does (acceptance writes only the inbox file), so
    /// it shows once the events are processed — normally milliseconds later.
    pub async fn enqueue(&self, events: Vec<(EventOrigin, NewEvent)>) -> Result<()> {
        let rows = events
            .into_iter()
            .map(|(origin, event)| inbox::InboxRow::encode(origin, &event))
            .collect::<Result<Vec<_>>>()?;
        self.inner.committer.enqueue(rows).await
    }

    /// Processes up to `limit` inbox events in arrival order in one transaction, if this node
    /// holds (or takes) the processing lease. Returns how many were processed.
    ///
    /// The lease (`holder`, [`LEASE_TTL_MS`] from `now`) is taken or renewed only by a batch
    /// that processes something; another holder gets 0 until it expires. A crash before the
    /// commit leaves the batch in the inbox for whoever holds the lease next.
    ///
    /// Mapping-service requests (ING-072) are not made here: each one fails with
    /// `enrich_error`. The server's worker uses [`Store::process_inbox_with`] instead.
    pub async fn process_inbox(&self, holder: &str, limit: usize, now: Millis) -> Result<usize> {
        let answers = ApiAnswers::failing_missing();
        match self
            .process_inbox_with(holder, limit, now, &answers)
            .await?
        {
            Processed::Done(n) => Ok(n),
            // Unreachable with `failing_missing`: every request has an answer.
            Processed::NeedCalls(_) => Ok(0),
        }
    }

    /// [`Store::process_inbox`] with the answers of mapping-service calls made so far for this
    /// batch. When the batch needs a call not answered yet, nothing is written and the calls
    /// are returned ([`Processed::NeedCalls`]): make them with no transaction open, add their
    /// answers, and call again.
    pub async fn process_inbox_with(
        &self,
        holder: &str,
        limit: usize,
        now: Millis,
        answers: &ApiAnswers,
    ) -> Result<Processed> {
        let done = process::process_inbox(
            &self.inner,
            holder,
            limit,
            now,
            process::Finish::Commit,
            answers,
        )
        .await?;
        if let Processed::Done(n) = done {
            self.refresh_statistics(n).await;
        }
        Ok(done)
    }

    /// PostgreSQL: re-`ANALYZE` the processing tables as they grow (after 1,000 processed
    /// events, then at every doubling).
    ///
    /// The batch looks alerts up with `alert_key IN (…)`. Without statistics (a young
    /// database, or autovacuum off or not yet run) the planner takes the default selectivity
    /// for `account_id = $1`, prefers an index on it, and every lookup scans all alerts of the
    /// account: processing fell from thousands of events a second to about two hundred on a
    /// freshly filled database until an ANALYZE ran. A failed refresh is only logged.
    async fn refresh_statistics(&self, processed: usize) {
        if self.inner.backend != Backend::Postgres || processed == 0 {
            return;
        }
        let total = self
            .inner
            .processed
            .fetch_add(processed as u64, Ordering::Relaxed)
            + processed as u64;
        let due = self.inner.next_analyze.load(Ordering::Relaxed);
        if total < due
            || self
                .inner
                .next_analyze
                .compare_exchange(
                    due,
                    total.saturating_mul(2),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_err()
        {
            return;
        }
        if let Err(e) = sqlx::query("ANALYZE alerts, incidents, events")
            .execute(&self.inner.write)
            .await
        {
            tracing::warn!(error = %e, "refreshing PostgreSQL statistics failed");
        }
    }

    /// Test hook: does everything [`Store::process_inbox`] does, then rolls the transaction
    /// back instead of committing, as if the node had crashed just before COMMIT.
    #[doc(hidden)]
    pub async fn process_inbox_then_crash(
        &self,
        holder: &str,
        limit: usize,
        now: Millis,
    ) -> Result<usize> {
        let answers = ApiAnswers::failing_missing();
        match process::process_inbox(
            &self.inner,
            holder,
            limit,
            now,
            process::Finish::Rollback,
            &answers,
        )
        .await?
        {
            Processed::Done(n) => Ok(n),
            Processed::NeedCalls(_) => Ok(0),
        }
    }

    /// The first `limit` events waiting in the inbox, in processing (`seq`) order, without
    /// taking them (for tests and diagnostics). Processed events are never shown, even on
    /// SQLite where their rows are deleted a little later.
    pub async fn peek_inbox(&self, limit: usize) -> Result<Vec<QueuedEvent>> {
        process::peek(&self.inner.read, self.inner.inbox.as_ref(), limit).await
    }

    /// Number of events waiting in the inbox (not processed yet); 0 once everything accepted
    /// has been processed.
    pub async fn inbox_depth(&self) -> Result<i64> {
        process::depth(&self.inner.read, self.inner.inbox.as_ref()).await
    }

    pub async fn account(&self, account_id: i64) -> Result<Option<Account>> {
        query::account(&self.inner.read, account_id).await
    }

    pub async fn member(&self, account_id: i64, member_id: i64) -> Result<Option<Member>> {
        query::member(&self.inner.read, account_id, member_id).await
    }

    pub async fn list_channels(
        &self,
        account_id: i64,
        filter: &ChannelFilter,
    ) -> Result<Page<Channel>> {
        query::list_channels(&self.inner.read, account_id, filter).await
    }

    pub async fn incident(&self, account_id: i64, incident_id: &str) -> Result<Option<Incident>> {
        query::incident(&self.inner.read, account_id, incident_id).await
    }

    pub async fn list_incidents(
        &self,
        account_id: i64,
        filter: &IncidentFilter,
    ) -> Result<Page<Incident>> {
        query::list_incidents(&self.inner.read, account_id, filter).await
    }

    pub async fn alert(&self, account_id: i64, alert_id: &str) -> Result<Option<Alert>> {
        query::alert(&self.inner.read, account_id, alert_id).await
    }

    pub async fn list_alerts(&self, account_id: i64, filter: &AlertFilter) -> Result<Page<Alert>> {
        query::list_alerts(&self.inner.read, account_id, filter).await
    }

    pub async fn list_events(
        &self,
        account_id: i64,
        filter: &EventFilter,
    ) -> Result<Page<StoredEvent>> {
        query::list_events(&self.inner.read, account_id, filter).await
    }

    /// Stores a change event and updates or starts its change record (ING-242); returns
    /// the change id.
    pub async fn record_change(
        &self,
        account_id: i64,
        integration_id: i64,
        event: &klaxon_core::change::NewChangeEvent,
        now: Millis,
    ) -> Result<String> {
        changes::record(&self.inner.write, account_id, integration_id, event, now).await
    }

    /// A page of the account's change records (openapi-compat.md §2.13).
    pub async fn list_changes(
        &self,
        account_id: i64,
        filter: &ChangeFilter,
    ) -> Result<Page<ChangeRecord>> {
        changes::list(&self.inner.read, account_id, filter).await
    }

    /// The stored events of the account's changes, oldest first.
    pub async fn change_events(
        &self,
        account_id: i64,
        change_ids: &[String],
    ) -> Result<Vec<ChangeEventRecord>> {
        changes::events(&self.inner.read, account_id, change_ids).await
    }

    /// Creates an inbound integration (openapi-compat.md §2.6.1) and returns its id.
    pub async fn create_integration(
        &self,
        account_id: i64,
        integration: &NewIntegration,
    ) -> Result<i64> {
        let key = self
            .headers_sealing_key(account_id, &integration.settings, integration.now)
            .await?;
        integrations::create(&self.inner.write, key.as_ref(), account_id, integration).await
    }

    /// The tenant's sealing key when `settings` hold HTTP-pull headers to seal (fetched
    /// before a write transaction begins: it may create the key).
    async fn headers_sealing_key(
        &self,
        account_id: i64,
        settings: &str,
        now: Millis,
    ) -> Result<Option<sealing::DataKey>> {
        if integrations::has_clear_headers(settings) {
            self.sealing_key(account_id, now).await
        } else {
            Ok(None)
        }
    }

    /// Opens the sealed HTTP-pull headers of integrations read for a caller that needs them.
    async fn open_integrations(&self, items: &mut [Integration]) -> Result<()> {
        let mut opener = sealing::Opener::new(self);
        for i in items {
            integrations::open_settings(
                &mut opener,
                i.account_id,
                i.integration_id,
                &mut i.settings,
            )
            .await?;
        }
        Ok(())
    }

    /// The account's live (not deleted) integration `integration_id`.
    pub async fn integration(
        &self,
        account_id: i64,
        integration_id: i64,
    ) -> Result<Option<Integration>> {
        let mut found = integrations::get(&self.inner.read, account_id, integration_id).await?;
        if let Some(i) = found.as_mut() {
            self.open_integrations(std::slice::from_mut(i)).await?;
        }
        Ok(found)
    }

    /// A page of the account's live integrations, in creation order.
    pub async fn list_integrations(
        &self,
        account_id: i64,
        filter: &IntegrationFilter,
    ) -> Result<Page<Integration>> {
        let mut page = integrations::list(&self.inner.read, account_id, filter).await?;
        self.open_integrations(&mut page.items).await?;
        Ok(page)
    }

    /// Soft-deletes the account's live integration; its key stops resolving. False when there
    /// is no such live integration.
    pub async fn delete_integration(
        &self,
        account_id: i64,
        integration_id: i64,
        now: Millis,
    ) -> Result<bool> {
        let change = integrations::Change::Delete;
        integrations::update(&self.inner.write, account_id, integration_id, change, now).await
    }

    /// Replaces the name and settings (JSON object text) of the account's live integration;
    /// false when there is none.
    pub async fn update_integration(
        &self,
        account_id: i64,
        integration_id: i64,
        integration_name: &str,
        settings: &str,
        now: Millis,
    ) -> Result<bool> {
        let key = self.headers_sealing_key(account_id, settings, now).await?;
        let change = integrations::Change::Edit {
            name: integration_name,
            settings: integrations::seal_settings(
                key.as_ref(),
                account_id,
                integration_id,
                settings,
            )?,
        };
        integrations::update(&self.inner.write, account_id, integration_id, change, now).await
    }

    /// Enables or disables the account's live integration (ING-005); false when none.
    pub async fn set_integration_enabled(
        &self,
        account_id: i64,
        integration_id: i64,
        enabled: bool,
        now: Millis,
    ) -> Result<bool> {
        let change = integrations::Change::Enabled(enabled);
        integrations::update(&self.inner.write, account_id, integration_id, change, now).await
    }

    /// Replaces the push key of the account's live integration; the old key stops resolving.
    /// False when there is no such live integration.
    pub async fn rotate_integration_key(
        &self,
        account_id: i64,
        integration_id: i64,
        new_key: &str,
        now: Millis,
    ) -> Result<bool> {
        let change = integrations::Change::Key(new_key);
        integrations::update(&self.inner.write, account_id, integration_id, change, now).await
    }

    /// Creates a shared alert integration with its route version 1 (the default route
    /// `default_channel_ids`, validated by the caller) in one transaction (ING-096).
    pub async fn create_shared_integration(
        &self,
        account_id: i64,
        integration: &NewIntegration,
        default_channel_ids: &[i64],
        author: i64,
    ) -> Result<i64> {
        let key = self
            .headers_sealing_key(account_id, &integration.settings, integration.now)
            .await?;
        routes::create_shared(
            &self.inner.write,
            key.as_ref(),
            account_id,
            integration,
            default_channel_ids,
            author,
        )
        .await
    }

    /// ING-095: saves a validated route configuration as the next version, if `based_on` is
    /// still the latest version (0 while none is saved); otherwise nothing is written.
    pub async fn save_routes(
        &self,
        account_id: i64,
        integration_id: i64,
        based_on: i64,
        content: &klaxon_core::routing::RouteConfig,
        author: i64,
        now: Millis,
    ) -> Result<std::result::Result<RouteVersion, RouteRefusal>> {
        routes::save(
            &self.inner.write,
            account_id,
            integration_id,
            based_on,
            content,
            author,
            now,
        )
        .await
    }

    /// ING-095: a new version copying `to_version`; `based_on`, when given, must be the
    /// latest version.
    pub async fn rollback_routes(
        &self,
        account_id: i64,
        integration_id: i64,
        to_version: i64,
        based_on: Option<i64>,
        author: i64,
        now: Millis,
    ) -> Result<std::result::Result<RouteVersion, RouteRefusal>> {
        routes::rollback(
            &self.inner.write,
            account_id,
            integration_id,
            to_version,
            based_on,
            author,
            now,
        )
        .await
    }

    /// Version `version` of the integration's routes; `0` = the latest.
    pub async fn route_version(
        &self,
        account_id: i64,
        integration_id: i64,
        version: i64,
    ) -> Result<Option<RouteVersion>> {
        routes::version(&self.inner.read, account_id, integration_id, version).await
    }

    /// The latest route version of each listed integration that has one.
    pub async fn latest_routes(
        &self,
        account_id: i64,
        integration_ids: &[i64],
    ) -> Result<std::collections::HashMap<i64, RouteVersion>> {
        let mut conn = self.inner.read.acquire().await?;
        routes::latest_of(&mut conn, account_id, integration_ids).await
    }

    /// A page of the integration's route versions, newest first unless `asc`, and how many
    /// versions there are.
    pub async fn route_history(
        &self,
        account_id: i64,
        integration_id: i64,
        p: i64,
        limit: i64,
        asc: bool,
    ) -> Result<(Vec<RouteVersion>, i64)> {
        routes::history(&self.inner.read, account_id, integration_id, p, limit, asc).await
    }

    /// Which of `ids` are channels of the account that are not deleted (disabled ones are).
    pub async fn existing_channels(
        &self,
        account_id: i64,
        ids: &[i64],
    ) -> Result<std::collections::HashSet<i64>> {
        let mut conn = self.inner.read.acquire().await?;
        routes::existing_channels(&mut conn, account_id, ids).await
    }

    /// Stores a new schedule (prepared by `klaxon_core::schedule::create_schedule`) and
    /// returns its id; refused when another live schedule of the account has its name.
    pub async fn create_schedule(
        &self,
        account_id: i64,
        schedule: &klaxon_core::schedule::Schedule,
    ) -> Result<std::result::Result<i64, ScheduleRefusal>> {
        schedules::create(&self.inner.write, account_id, schedule).await
    }

    /// The account's live schedule `schedule_id` (deleted ones are not found).
    pub async fn schedule(
        &self,
        account_id: i64,
        schedule_id: i64,
    ) -> Result<Option<klaxon_core::schedule::Schedule>> {
        schedules::get(&self.inner.read, account_id, schedule_id).await
    }

    /// Replaces the definition of `schedule.schedule_id` (prepared by
    /// `klaxon_core::schedule::apply_edit`); refused when the account has no such live
    /// schedule or the new name is another live schedule's.
    pub async fn update_schedule(
        &self,
        account_id: i64,
        schedule: &klaxon_core::schedule::Schedule,
    ) -> Result<std::result::Result<(), ScheduleRefusal>> {
        schedules::update(&self.inner.write, account_id, schedule).await
    }

    /// Soft-deletes the account's live schedules among `schedule_ids`; returns how many.
    pub async fn delete_schedules(
        &self,
        account_id: i64,
        schedule_ids: &[i64],
        now: Millis,
    ) -> Result<u64> {
        schedules::delete(&self.inner.write, account_id, schedule_ids, now).await
    }

    /// feature: iCalendar feed. Sets (`Some`) or clears (`None`) the calendar feed token of
    /// the account's live schedule; the old token stops working. False when there is no
    /// such live schedule.
    pub async fn schedule_feed_token(
        &self,
        account_id: i64,
        schedule_id: i64,
        new_token: Option<&str>,
    ) -> Result<bool> {
        schedules::set_feed_token(&self.inner.write, account_id, schedule_id, new_token).await
    }

    /// feature: iCalendar feed. The live schedule whose feed token is `token`, with its
    /// `account_id`; `None` for an unknown or empty token.
    pub async fn schedule_by_feed_token(
        &self,
        token: &str,
    ) -> Result<Option<(i64, klaxon_core::schedule::Schedule)>> {
        schedules::by_feed_token(&self.inner.read, token).await
    }

    /// A page of the account's live schedules, newest first.
    pub async fn list_schedules(
        &self,
        account_id: i64,
        filter: &ScheduleFilter,
    ) -> Result<Page<klaxon_core::schedule::Schedule>> {
        schedules::list(&self.inner.read, account_id, filter).await
    }

    // ---- the response side (response.rs) ----

    /// Runs one action on an incident in its own transaction (response.md §2.3–§2.11). The
    /// closure gets the engine, the incident and its rule; a refusal writes nothing.
    pub async fn incident_action<F>(
        &self,
        account_id: i64,
        incident_id: &str,
        now: Millis,
        f: F,
    ) -> Result<ActionResult>
    where
        F: FnOnce(
            &mut klaxon_core::response::Engine<'_>,
            &mut Incident,
            &ActionContext<'_>,
        ) -> std::result::Result<(), klaxon_core::response::ActionError>,
    {
        response::act(&self.inner.write, account_id, incident_id, now, f).await
    }

    /// Inserts a manual incident (RSP-011) and lets `f` assign it, in one transaction.
    pub async fn create_incident<F>(
        &self,
        incident: Incident,
        now: Millis,
        f: F,
    ) -> Result<std::result::Result<Incident, klaxon_core::response::ActionError>>
    where
        F: FnOnce(
            &mut klaxon_core::response::Engine<'_>,
            &mut Incident,
            &ActionContext<'_>,
        ) -> std::result::Result<(), klaxon_core::response::ActionError>,
    {
        response::create_incident(&self.inner.write, incident, now, f).await
    }

    /// Claims due timers for `holder` (see [`TIMER_CLAIM_MS`]).
    pub async fn claim_due_timers(
        &self,
        holder: &str,
        now: Millis,
        limit: i64,
    ) -> Result<Vec<DueTimer>> {
        response::claim_due(&self.inner.write, holder, now, limit).await
    }

    /// Runs one claimed timer; false if the claim was lost meanwhile.
    pub async fn run_timer(&self, holder: &str, timer: &DueTimer, now: Millis) -> Result<bool> {
        response::run_timer(&self.inner.write, holder, timer, now).await
    }

    /// Claims and runs every timer due at `now`, repeatedly, until none is left; returns how
    /// many steps ran. Tests drive time with this.
    pub async fn run_due_timers(&self, holder: &str, now: Millis) -> Result<usize> {
        let mut ran = 0;
        loop {
            let due = self.claim_due_timers(holder, now, 64).await?;
            if due.is_empty() {
                return Ok(ran);
            }
            for timer in &due {
                if self.run_timer(holder, timer, now).await? {
                    ran += 1;
                }
            }
        }
    }

    /// The earliest due instant of any pending timer.
    pub async fn next_timer_due(&self) -> Result<Option<Millis>> {
        response::next_due(&self.inner.read).await
    }

    /// The incident's pending timers as `(kind, due_at)`.
    pub async fn incident_timers(
        &self,
        account_id: i64,
        incident_id: &str,
    ) -> Result<Vec<(String, Millis)>> {
        response::incident_timers(&self.inner.read, account_id, incident_id).await
    }

    pub async fn escalation_rules(
        &self,
        account_id: i64,
        channel_id: i64,
    ) -> Result<Vec<klaxon_core::response::EscalationRule>> {
        response::list_rules(&self.inner.read, account_id, channel_id).await
    }

    pub async fn escalation_rule(
        &self,
        account_id: i64,
        rule_id: &str,
    ) -> Result<Option<klaxon_core::response::EscalationRule>> {
        response::get_rule(&self.inner.read, account_id, rule_id).await
    }

    /// Creates (empty `rule_id`) or replaces a validated rule; `priority < 0` = last place.
    pub async fn save_escalation_rule(
        &self,
        rule: klaxon_core::response::EscalationRule,
        now: Millis,
    ) -> Result<std::result::Result<klaxon_core::response::EscalationRule, RuleRefusal>> {
        response::save_rule(&self.inner.write, rule, now, &mut RandomIds).await
    }

    pub async fn delete_escalation_rule(
        &self,
        account_id: i64,
        channel_id: i64,
        rule_id: &str,
    ) -> Result<bool> {
        response::delete_rule(&self.inner.write, account_id, channel_id, rule_id).await
    }

    /// Merges incidents (RSP-100) in one transaction.
    #[allow(clippy::too_many_arguments)]
    pub async fn merge_incidents(
        &self,
        account_id: i64,
        target_id: &str,
        source_ids: &[String],
        actor: i64,
        title: Option<&str>,
        comment: &str,
        now: Millis,
    ) -> Result<std::result::Result<(), MergeRefusal>> {
        response::merge(
            &self.inner.write,
            account_id,
            target_id,
            source_ids,
            actor,
            title,
            comment,
            now,
        )
        .await
    }

    /// Moves alerts into an incident (RSP-101) in one transaction.
    #[allow(clippy::too_many_arguments)]
    pub async fn merge_alerts(
        &self,
        account_id: i64,
        target_id: &str,
        alert_ids: &[String],
        actor: i64,
        title: Option<&str>,
        comment: &str,
        now: Millis,
    ) -> Result<std::result::Result<(), MergeRefusal>> {
        response::merge_alerts(
            &self.inner.write,
            account_id,
            target_id,
            alert_ids,
            actor,
            title,
            comment,
            now,
        )
        .await
    }

    /// Rewrites a channel's rule priorities to the given order (RSP-137).
    pub async fn reorder_escalation_rules(
        &self,
        account_id: i64,
        channel_id: i64,
        rule_ids: &[String],
        actor: i64,
        now: Millis,
    ) -> Result<std::result::Result<(), ReorderRefusal>> {
        response::reorder_rules(
            &self.inner.write,
            account_id,
            channel_id,
            rule_ids,
            actor,
            now,
        )
        .await
    }

    /// Closed incidents of a channel started in `[from, to)`, newest first (RSP-451).
    pub async fn closed_incidents_between(
        &self,
        account_id: i64,
        channel_id: i64,
        from: Millis,
        to: Millis,
        limit: i64,
    ) -> Result<Vec<Incident>> {
        response::closed_in_window(&self.inner.read, account_id, channel_id, from, to, limit).await
    }

    /// The account's custom field definitions, oldest first (response.md 1.11).
    pub async fn custom_fields(
        &self,
        account_id: i64,
    ) -> Result<Vec<klaxon_core::response::FieldDefinition>> {
        fields::list(&self.inner.read, account_id).await
    }

    /// Creates a validated definition (RSP-085: at most 15, unique names).
    pub async fn create_custom_field(
        &self,
        account_id: i64,
        def: klaxon_core::response::FieldDefinition,
        now: Millis,
    ) -> Result<std::result::Result<klaxon_core::response::FieldDefinition, FieldRefusal>> {
        fields::create(&self.inner.write, account_id, def, now, &mut RandomIds).await
    }

    pub async fn update_custom_field(
        &self,
        account_id: i64,
        def: &klaxon_core::response::FieldDefinition,
        now: Millis,
    ) -> Result<bool> {
        fields::update(&self.inner.write, account_id, def, now).await
    }

    /// Deletes a definition and removes its values from every incident.
    pub async fn delete_custom_field(&self, account_id: i64, field_id: &str) -> Result<bool> {
        fields::delete(&self.inner.write, account_id, field_id).await
    }

    /// The account's notification templates (response.md 1.16), oldest first.
    pub async fn notification_templates(
        &self,
        account_id: i64,
    ) -> Result<Vec<klaxon_core::template::TemplateRecord>> {
        templates::list(&self.inner.read, account_id).await
    }

    pub async fn notification_template(
        &self,
        account_id: i64,
        template_id: &str,
    ) -> Result<Option<klaxon_core::template::TemplateRecord>> {
        templates::get(&self.inner.read, account_id, template_id).await
    }

    /// Inserts a validated template (`account_id` set) with a new id; names are unique.
    pub async fn create_notification_template(
        &self,
        t: klaxon_core::template::TemplateRecord,
        now: Millis,
    ) -> Result<std::result::Result<klaxon_core::template::TemplateRecord, TemplateRefusal>> {
        templates::create(&self.inner.write, t, now, &mut RandomIds).await
    }

    /// Replaces a validated template's editable fields.
    pub async fn update_notification_template(
        &self,
        t: klaxon_core::template::TemplateRecord,
        now: Millis,
    ) -> Result<std::result::Result<klaxon_core::template::TemplateRecord, TemplateRefusal>> {
        templates::update(&self.inner.write, t, now).await
    }

    /// Deletes a template unless an escalation rule references it (RSP-353).
    pub async fn delete_notification_template(
        &self,
        account_id: i64,
        template_id: &str,
    ) -> Result<std::result::Result<(), TemplateRefusal>> {
        templates::delete(&self.inner.write, account_id, template_id).await
    }

    /// The incident's timeline (response.md 1.10), with one look-ahead row for `has_next_page`.
    pub async fn incident_feed(
        &self,
        account_id: i64,
        incident_id: &str,
        kinds: &[String],
        asc: bool,
        offset: i64,
        limit: i64,
    ) -> Result<(Vec<FeedEntry>, bool)> {
        response::feed(
            &self.inner.read,
            account_id,
            incident_id,
            kinds,
            asc,
            offset,
            limit,
        )
        .await
    }

    /// The notification outbox, oldest first.
    pub async fn notification_outbox(
        &self,
        account_id: i64,
        incident_id: Option<&str>,
        limit: i64,
    ) -> Result<Vec<OutboxEntry>> {
        response::outbox(&self.inner.read, account_id, incident_id, limit).await
    }

    /// Stops the group committer after it has committed everything already handed to it, then
    /// closes the pools. Later calls on any clone fail with [`StoreError::Closed`].
    pub async fn close(&self) {
        self.inner.committer.close().await;
        self.inner.write.close().await;
        self.inner.read.close().await;
        if let Some(file) = &self.inner.inbox {
            file.write.close().await;
            file.read.close().await;
            if let Some(checkpoint) = &file.checkpoint {
                checkpoint.close().await;
            }
        }
    }
}
