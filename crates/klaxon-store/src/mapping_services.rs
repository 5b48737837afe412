//! Label mapping services (ingest.md ING-072…075): the stored service objects that map rules
//! with `source = api` name, and the answers a batch's calls got.
//!
//! A service's custom headers usually carry its credential (ING-074), so the `headers`
//! column is sealed at rest under the tenant's data key when a key-encryption key is
//! configured ([`crate::sealing`]). Batch processing reads services inside its transaction
//! and leaves sealed headers closed; the worker opens them just before it makes the calls
//! ([`crate::Store::open_call_headers`]).
//!
//! The store never calls a service. Processing reports the calls a batch needs
//! ([`crate::Processed::NeedCalls`]); the caller makes them outside any transaction and runs
//! the batch again with an [`ApiAnswers`] holding their outcomes.

use std::collections::{BTreeMap, HashMap};

use klaxon_core::enrichment::{ApiAnswer, ApiKey, ApiLookup, MappingService};
use klaxon_core::ids::IdSource;
use klaxon_core::model::Millis;
use sqlx::{AnyConnection, AnyPool};

use crate::db::Sql;
use crate::enrichment::{MappingRefusal, record_row};
use crate::records::Page;
use crate::rows::{get_i64, get_str};
use crate::sealing::{DataKey, Opener, SecretSlot, is_sealed_value, seal_value};
use crate::{Result, StoreError};

/// Most values in one `IN (…)` list.
const IN_CHUNK: usize = 512;

/// A stored service with its bookkeeping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceRecord {
    pub service: MappingService,
    pub creator_id: i64,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// The answers the calls of one batch got (ING-073), keyed by service, URL and body.
#[derive(Debug, Clone)]
pub struct ApiAnswers {
    answers: HashMap<ApiKey, ApiAnswer>,
    /// A request nobody made counts as failed (callers that make no calls).
    missing_fails: bool,
    failed: ApiAnswer,
}

impl Default for ApiAnswers {
    fn default() -> Self {
        ApiAnswers::new()
    }
}

impl ApiAnswers {
    /// No answers yet: requests not answered are reported as calls to make.
    pub fn new() -> ApiAnswers {
        ApiAnswers {
            answers: HashMap::new(),
            missing_fails: false,
            failed: ApiAnswer::Failed("no call was made".into()),
        }
    }

    /// For a caller that makes no calls: every request fails (`enrich_error`), so the batch
    /// is processed without them.
    pub fn failing_missing() -> ApiAnswers {
        ApiAnswers {
            missing_fails: true,
            ..ApiAnswers::new()
        }
    }

    pub fn insert(&mut self, key: ApiKey, answer: ApiAnswer) {
        self.answers.insert(key, answer);
    }

    /// From now on, requests not answered fail instead of being reported.
    pub fn fail_missing(&mut self) {
        self.missing_fails = true;
    }

    pub fn len(&self) -> usize {
        self.answers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.answers.is_empty()
    }

    pub(crate) fn lookup(&self, key: &ApiKey) -> ApiLookup<'_> {
        match self.answers.get(key) {
            Some(a) => ApiLookup::Answer(a),
            None if self.missing_fails => ApiLookup::Answer(&self.failed),
            None => ApiLookup::NotLoaded,
        }
    }
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

const COLUMNS: &str = "service_id, account_id, name, description, team_id, url, headers, \
     timeout, retry_count, insecure_skip_verify, enabled, creator_id, created_at, updated_at";

fn headers_slot(account_id: i64, service_id: &str) -> SecretSlot {
    SecretSlot::new(account_id, "mapping_services", "headers", service_id)
}

fn parse_headers(id: &str, text: &str) -> Result<BTreeMap<String, String>> {
    serde_json::from_str(text).map_err(|e| corrupt(&format!("mapping_services.headers {id}"), e))
}

/// A stored service and its stored `headers` text when that is sealed (the record's headers
/// are then empty until [`open_headers`] fills them).
struct StoredService {
    record: ServiceRecord,
    sealed_headers: Option<String>,
}

async fn open_headers(opener: &mut Opener<'_>, stored: StoredService) -> Result<ServiceRecord> {
    let StoredService {
        mut record,
        sealed_headers,
    } = stored;
    if let Some(sealed) = sealed_headers {
        let s = &mut record.service;
        let clear = opener
            .open(headers_slot(s.account_id, &s.service_id), &sealed)
            .await?;
        s.headers = parse_headers(&s.service_id, &clear)?;
    }
    Ok(record)
}

fn service_row(row: &sqlx::any::AnyRow) -> Result<StoredService> {
    let id = get_str(row, "service_id")?;
    let text = get_str(row, "headers")?;
    let (headers, sealed_headers) = if is_sealed_value(&text) {
        (BTreeMap::new(), Some(text))
    } else {
        (parse_headers(&id, &text)?, None)
    };
    let record = ServiceRecord {
        service: MappingService {
            service_id: id,
            account_id: get_i64(row, "account_id")?,
            name: get_str(row, "name")?,
            description: get_str(row, "description")?,
            team_id: get_i64(row, "team_id")?,
            url: get_str(row, "url")?,
            headers,
            timeout: u64::try_from(get_i64(row, "timeout")?).unwrap_or(0),
            retry_count: u32::try_from(get_i64(row, "retry_count")?).unwrap_or(0),
            insecure_skip_verify: get_i64(row, "insecure_skip_verify")? != 0,
            enabled: get_i64(row, "enabled")? != 0,
        },
        creator_id: get_i64(row, "creator_id")?,
        created_at: get_i64(row, "created_at")?,
        updated_at: get_i64(row, "updated_at")?,
    };
    Ok(StoredService {
        record,
        sealed_headers,
    })
}

async fn load(
    conn: &mut AnyConnection,
    account_id: i64,
    service_id: &str,
) -> Result<Option<StoredService>> {
    let mut sql = Sql::new("SELECT ");
    sql.push(COLUMNS)
        .push(" FROM mapping_services WHERE account_id = ")
        .bind(account_id)
        .push(" AND service_id = ")
        .bind(service_id);
    match sql.query_on(conn).fetch_optional(&mut *conn).await? {
        Some(row) => Ok(Some(service_row(&row)?)),
        None => Ok(None),
    }
}

/// The services of `ids` that exist in the account, with sealed headers left closed (empty):
/// processing needs no headers, and the calls it reports are opened outside its transaction.
pub(crate) async fn by_id(
    conn: &mut AnyConnection,
    account_id: i64,
    ids: &[String],
) -> Result<HashMap<String, MappingService>> {
    let mut out = HashMap::new();
    for chunk in ids.chunks(IN_CHUNK) {
        let mut sql = Sql::new("SELECT ");
        sql.push(COLUMNS)
            .push(" FROM mapping_services WHERE account_id = ")
            .bind(account_id);
        sql.and_in_padded("service_id", chunk);
        for row in sql.query_on(conn).fetch_all(&mut *conn).await? {
            let r = service_row(&row)?.record;
            out.insert(r.service.service_id.clone(), r.service);
        }
    }
    Ok(out)
}

/// The `headers` column value: the JSON object, sealed when a key is given and it is not
/// empty.
fn headers_json(key: Option<&DataKey>, s: &MappingService) -> Result<String> {
    let text = serde_json::to_string(&s.headers).map_err(|e| corrupt("json", e))?;
    if s.headers.is_empty() {
        return Ok(text);
    }
    Ok(seal_value(
        key,
        &headers_slot(s.account_id, &s.service_id),
        &text,
    )?)
}

/// Creates (empty `service_id`) or updates a service validated with
/// `klaxon_core::enrichment::validate_service`.
async fn save(
    pool: &AnyPool,
    key: Option<&DataKey>,
    mut s: MappingService,
    by: i64,
    now: Millis,
    ids: &mut (dyn IdSource + Send),
) -> Result<std::result::Result<ServiceRecord, MappingRefusal>> {
    let mut tx = pool.begin().await?;
    if s.service_id.is_empty() {
        s.service_id = ids.object_id(now);
        let mut sql = Sql::new("INSERT INTO mapping_services (");
        sql.push(COLUMNS).push(") VALUES (");
        sql.bind(s.service_id.as_str())
            .push(", ")
            .bind(s.account_id)
            .push(", ")
            .bind(s.name.as_str())
            .push(", ")
            .bind(s.description.as_str())
            .push(", ")
            .bind(s.team_id)
            .push(", ")
            .bind(s.url.as_str())
            .push(", ")
            .bind(headers_json(key, &s)?)
            .push(", ")
            .bind(i64::try_from(s.timeout).unwrap_or(i64::MAX))
            .push(", ")
            .bind(i64::from(s.retry_count))
            .push(", ")
            .bind(i64::from(s.insecure_skip_verify))
            .push(", ")
            .bind(i64::from(s.enabled))
            .push(", ")
            .bind(by)
            .push(", ")
            .bind(now)
            .push(", ")
            .bind(now)
            .push(")");
        sql.query_on(&tx).execute(&mut *tx).await?;
        tx.commit().await?;
        return Ok(Ok(ServiceRecord {
            service: s,
            creator_id: by,
            created_at: now,
            updated_at: now,
        }));
    }
    let Some(StoredService { record: old, .. }) =
        load(&mut tx, s.account_id, &s.service_id).await?
    else {
        tx.rollback().await?;
        return Ok(Err(MappingRefusal::ServiceNotFound));
    };
    let mut sql = Sql::new("UPDATE mapping_services SET name = ");
    sql.bind(s.name.as_str())
        .push(", description = ")
        .bind(s.description.as_str())
        .push(", team_id = ")
        .bind(s.team_id)
        .push(", url = ")
        .bind(s.url.as_str())
        .push(", headers = ")
        .bind(headers_json(key, &s)?)
        .push(", timeout = ")
        .bind(i64::try_from(s.timeout).unwrap_or(i64::MAX))
        .push(", retry_count = ")
        .bind(i64::from(s.retry_count))
        .push(", insecure_skip_verify = ")
        .bind(i64::from(s.insecure_skip_verify))
        .push(", enabled = ")
        .bind(i64::from(s.enabled))
        .push(", updated_at = ")
        .bind(now)
        .push(" WHERE account_id = ")
        .bind(s.account_id)
        .push(" AND service_id = ")
        .bind(s.service_id.as_str());
    sql.query_on(&tx).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(Ok(ServiceRecord {
        service: s,
        updated_at: now,
        ..old
    }))
}

/// The live integrations whose rules call `service_id`.
async fn users_of(conn: &mut AnyConnection, account_id: i64, service_id: &str) -> Result<Vec<i64>> {
    let mut sql = Sql::new(
        "SELECT r.integration_id, r.rules, r.updated_by, r.updated_at FROM enrichment_rules r \
         JOIN integrations i ON i.integration_id = r.integration_id \
         AND i.account_id = r.account_id WHERE i.deleted = 0 AND r.account_id = ",
    );
    sql.bind(account_id);
    let mut out = Vec::new();
    for row in sql.query_on(conn).fetch_all(&mut *conn).await? {
        let record = record_row(&row)?;
        if record
            .rules
            .iter()
            .any(|r| r.source == "api" && r.service_id == service_id)
        {
            out.push(record.integration_id);
        }
    }
    Ok(out)
}

async fn delete(
    pool: &AnyPool,
    account_id: i64,
    service_id: &str,
) -> Result<std::result::Result<(), MappingRefusal>> {
    let mut tx = pool.begin().await?;
    let users = users_of(&mut tx, account_id, service_id).await?;
    if !users.is_empty() {
        tx.rollback().await?;
        return Ok(Err(MappingRefusal::InUse(users)));
    }
    let mut sql = Sql::new("DELETE FROM mapping_services WHERE account_id = ");
    sql.bind(account_id)
        .push(" AND service_id = ")
        .bind(service_id);
    if sql.query_on(&tx).execute(&mut *tx).await?.rows_affected() == 0 {
        tx.rollback().await?;
        return Ok(Err(MappingRefusal::ServiceNotFound));
    }
    tx.commit().await?;
    Ok(Ok(()))
}

async fn list(
    store: &crate::Store,
    account_id: i64,
    p: i64,
    limit: i64,
) -> Result<Page<ServiceRecord>> {
    let mut conn = store.inner.read.acquire().await?;
    let mut count = Sql::new("SELECT COUNT(*) AS n FROM mapping_services WHERE account_id = ");
    count.bind(account_id);
    let total = get_i64(&count.query_on(&conn).fetch_one(&mut *conn).await?, "n")?;
    let limit = limit.max(1);
    let offset = (p.max(1) - 1).saturating_mul(limit);
    let mut sql = Sql::new("SELECT ");
    sql.push(COLUMNS)
        .push(" FROM mapping_services WHERE account_id = ")
        .bind(account_id)
        .push(" ORDER BY created_at, service_id LIMIT ")
        .bind(limit)
        .push(" OFFSET ")
        .bind(offset);
    let items = sql
        .query_on(&conn)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(service_row)
        .collect::<Result<Vec<_>>>()?;
    drop(conn);
    let mut opener = Opener::new(store);
    let mut opened = Vec::with_capacity(items.len());
    for item in items {
        opened.push(open_headers(&mut opener, item).await?);
    }
    let items = opened;
    let seen = offset.saturating_add(i64::try_from(items.len()).unwrap_or(i64::MAX));
    Ok(Page {
        has_next_page: seen < total,
        items,
        total,
        search_after_ctx: None,
    })
}

impl crate::Store {
    pub async fn mapping_service(
        &self,
        account_id: i64,
        service_id: &str,
    ) -> Result<Option<ServiceRecord>> {
        let found = {
            let mut conn = self.inner.read.acquire().await?;
            load(&mut conn, account_id, service_id).await?
        };
        match found {
            Some(stored) => Ok(Some(open_headers(&mut Opener::new(self), stored).await?)),
            None => Ok(None),
        }
    }

    /// Which of `service_ids` exist in the account.
    pub async fn mapping_services_by_id(
        &self,
        account_id: i64,
        service_ids: &[String],
    ) -> Result<HashMap<String, MappingService>> {
        let mut found = {
            let mut conn = self.inner.read.acquire().await?;
            by_id(&mut conn, account_id, service_ids).await?
        };
        self.open_service_headers(account_id, found.values_mut())
            .await?;
        Ok(found)
    }

    /// Fills in the (sealed) headers of the services named by `services`, read again from
    /// the store: [`by_id`] leaves sealed headers closed inside a processing transaction.
    async fn open_service_headers<'s>(
        &self,
        account_id: i64,
        services: impl Iterator<Item = &'s mut MappingService>,
    ) -> Result<()> {
        let services: Vec<&mut MappingService> = services.collect();
        if services.is_empty() || !self.seals_secrets() {
            return Ok(());
        }
        let ids: Vec<String> = services.iter().map(|s| s.service_id.clone()).collect();
        let mut stored = Vec::new();
        {
            let mut conn = self.inner.read.acquire().await?;
            for chunk in ids.chunks(IN_CHUNK) {
                let mut sql = Sql::new(
                    "SELECT service_id, headers FROM mapping_services WHERE account_id = ",
                );
                sql.bind(account_id);
                sql.and_in_padded("service_id", chunk);
                for row in sql.query_on(&conn).fetch_all(&mut *conn).await? {
                    stored.push((get_str(&row, "service_id")?, get_str(&row, "headers")?));
                }
            }
        }
        let stored: HashMap<String, String> = stored.into_iter().collect();
        let mut opener = Opener::new(self);
        for s in services {
            if let Some(text) = stored.get(&s.service_id)
                && is_sealed_value(text)
            {
                let clear = opener
                    .open(headers_slot(account_id, &s.service_id), text)
                    .await?;
                s.headers = parse_headers(&s.service_id, &clear)?;
            }
        }
        Ok(())
    }

    /// Opens the sealed headers of the services that `calls` (reported by batch processing,
    /// ING-072) are about to call. Call it with no transaction open.
    pub async fn open_call_headers(
        &self,
        calls: &mut [klaxon_core::enrichment::ApiCall],
    ) -> Result<()> {
        let mut by_account: BTreeMap<i64, Vec<&mut MappingService>> = BTreeMap::new();
        for c in calls.iter_mut() {
            by_account
                .entry(c.service.account_id)
                .or_default()
                .push(&mut c.service);
        }
        for (account_id, services) in by_account {
            self.open_service_headers(account_id, services.into_iter())
                .await?;
        }
        Ok(())
    }

    pub async fn mapping_services(
        &self,
        account_id: i64,
        p: i64,
        limit: i64,
    ) -> Result<Page<ServiceRecord>> {
        list(self, account_id, p, limit).await
    }

    /// Creates (empty `service_id`) or updates a service validated with
    /// `klaxon_core::enrichment::validate_service`.
    pub async fn save_mapping_service(
        &self,
        service: MappingService,
        by: i64,
        now: Millis,
    ) -> Result<std::result::Result<ServiceRecord, MappingRefusal>> {
        let key = if service.headers.is_empty() {
            None
        } else {
            self.sealing_key(service.account_id, now).await?
        };
        save(
            &self.inner.write,
            key.as_ref(),
            service,
            by,
            now,
            &mut crate::RandomIds,
        )
        .await
    }

    /// Deletes a service, unless an enrichment rule of a live integration calls it.
    pub async fn delete_mapping_service(
        &self,
        account_id: i64,
        service_id: &str,
    ) -> Result<std::result::Result<(), MappingRefusal>> {
        delete(&self.inner.write, account_id, service_id).await
    }
}
