//! Self-service registration (service-agreement.md SVC-001, SVC-008, SVC-032, §14; migration
//! 0059): one-time codes for an e-mail address, kept only as a salted SHA-256, and the one
//! transaction that turns a verified registration into a tenant — the person (new, or the
//! existing identity signing in, SVC-008), the account with its owner, a `trial` billing row
//! in this deployment's region and currency, the directory entry, the legal entity, the
//! owner's contact record and one acceptance record per document version shown. Any refusal
//! leaves everything as it was, except that a wrong code counts as one attempt.

use argon2::Argon2;
use argon2::password_hash::PasswordVerifier;
use argon2::password_hash::phc::PasswordHash;
use klaxon_core::model::Millis;
use klaxon_saas::SaasError;
use klaxon_saas::agreement::{Level, Method};
use klaxon_saas::registration::{
    CONSENT_LABEL, CONSENT_LABEL_ID, CodeFacts, CodeRefusal, EntityType, check_acceptance,
    check_code, check_documents_available, documents_to_accept, next_code_allowed,
};
use sqlx::AnyConnection;

use super::notices::sha256_hex;
use super::{Result, SaasFailure, SaasSettings, audit, ts};
use crate::Store;
use crate::db::Sql;
use crate::records::BootstrapSeed;
use crate::rows::{get_i64, get_str};

/// Codes older than this are deleted when a new one is issued: they can no longer be used
/// and only name an address.
const CODE_KEEP_MS: Millis = 24 * 3_600_000;

/// What [`Store::saas_issue_registration_code`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeIssue {
    /// Stored (hashed); send it.
    Issued,
    /// The address had its codes for the hour: no code until then.
    Throttled { until: Millis },
}

/// A registration whose fields passed `klaxon_saas::registration::check_form`.
#[derive(Debug, Clone)]
pub struct NewRegistration {
    pub email: String,
    pub code: String,
    /// Plain; a new identity's is hashed here, an existing identity's is verified.
    pub password: String,
    pub organisation: String,
    pub entity_type: EntityType,
    pub legal_name: String,
    /// This deployment's region (the caller has routed other regions away, SVC-211).
    pub region: String,
    pub accepted_versions: Vec<i64>,
    pub at: Millis,
    pub client_ip: String,
    pub user_agent: String,
    /// `web` or `api`.
    pub client_type: String,
    pub request_id: String,
    /// The new account's first APP key and integration key (32 hex each).
    pub app_key: String,
    pub integration_key: String,
}

/// A tenant created by registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registered {
    pub account_id: i64,
    pub member_id: i64,
    /// The identity existed (it signed in and got one more tenant, SVC-008).
    pub existing_identity: bool,
    pub app_key: String,
    pub integration_key: String,
    pub channel_id: i64,
    pub acceptance_ids: Vec<i64>,
}

/// A tenant's entry in the directory (SVC-213).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryEntry {
    pub account_id: i64,
    pub region: String,
    pub created_at: Millis,
    pub source: String,
}

fn code_hash(salt: &str, code: &str) -> String {
    sha256_hex(format!("{salt}:{code}").as_bytes())
}

/// Compares without an early exit, so the time taken says nothing about the stored hash.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

fn normal(email: &str) -> String {
    email.trim().to_lowercase()
}

fn invalid(field: &'static str, message: impl Into<String>) -> SaasFailure {
    SaasFailure::Rule(SaasError::Invalid {
        field,
        message: message.into(),
    })
}

async fn verify_password(password: String, hashes: Vec<String>) -> Result<Option<usize>> {
    tokio::task::spawn_blocking(move || {
        hashes.iter().position(|h| {
            PasswordHash::new(h)
                .map(|parsed| {
                    Argon2::default()
                        .verify_password(password.as_bytes(), &parsed)
                        .is_ok()
                })
                .unwrap_or(false)
        })
    })
    .await
    .map_err(|e| {
        SaasFailure::Store(crate::StoreError::Database(format!(
            "password check task failed: {e}"
        )))
    })
}

/// The latest code of the address, if any: (code_id, salt, hash, facts).
async fn latest_code(
    conn: &mut AnyConnection,
    email: &str,
) -> Result<Option<(i64, String, String, CodeFacts)>> {
    let mut sql = Sql::new(
        "SELECT code_id, salt, code_hash, created_at, attempts, used_at \
         FROM saas_registration_codes WHERE email = ",
    );
    sql.bind(normal(email))
        .push(" ORDER BY code_id DESC LIMIT 1");
    let Some(row) = sql.query_on(conn).fetch_optional(&mut *conn).await? else {
        return Ok(None);
    };
    Ok(Some((
        get_i64(&row, "code_id")?,
        get_str(&row, "salt")?,
        get_str(&row, "code_hash")?,
        CodeFacts {
            created_at: ts(get_i64(&row, "created_at")?)?,
            attempts: get_i64(&row, "attempts")?,
            used: get_i64(&row, "used_at")? != 0,
        },
    )))
}

async fn insert_row(conn: &mut AnyConnection, sql: &mut Sql) -> Result<()> {
    sql.query_on(conn).execute(&mut *conn).await?;
    Ok(())
}

impl Store {
    /// SVC-001: stores a new one-time code for `email` (hashed with a fresh salt), unless the
    /// address already had its codes this hour. Issuing a code voids the earlier ones (only
    /// the latest is ever checked).
    pub async fn saas_issue_registration_code(
        &self,
        email: &str,
        code: &str,
        client_ip: &str,
        now: Millis,
    ) -> Result<CodeIssue> {
        let email = normal(email);
        let mut tx = self.inner.write.begin().await?;
        let mut old = Sql::new("DELETE FROM saas_registration_codes WHERE created_at < ");
        old.bind(now - CODE_KEEP_MS);
        insert_row(&mut tx, &mut old).await?;
        let mut sql = Sql::new("SELECT created_at FROM saas_registration_codes WHERE email = ");
        sql.bind(email.as_str());
        let rows = sql.query_on(&tx).fetch_all(&mut *tx).await?;
        let sent = rows
            .iter()
            .map(|r| ts(get_i64(r, "created_at")?))
            .collect::<Result<Vec<_>>>()?;
        if let Some(until) = next_code_allowed(&sent, ts(now)?) {
            tx.commit().await?;
            return Ok(CodeIssue::Throttled {
                until: until.as_millisecond(),
            });
        }
        let salt = {
            use rand::Rng;
            let mut bytes = [0u8; 16];
            rand::rng().fill(&mut bytes[..]);
            hex::encode(bytes)
        };
        let mut ins = Sql::new(
            "INSERT INTO saas_registration_codes (email, salt, code_hash, created_at, client_ip) VALUES (",
        );
        ins.bind(email.as_str())
            .push(", ")
            .bind(salt.as_str())
            .push(", ")
            .bind(code_hash(&salt, code))
            .push(", ")
            .bind(now)
            .push(", ")
            .bind(client_ip)
            .push(")");
        insert_row(&mut tx, &mut ins).await?;
        tx.commit().await?;
        Ok(CodeIssue::Issued)
    }

    /// SVC-001/008/032/210: creates the tenant of a verified registration, or changes nothing
    /// but the code's attempt count. See the module comment for what is created.
    pub async fn saas_register(
        &self,
        settings: &SaasSettings,
        r: &NewRegistration,
    ) -> Result<Registered> {
        let now = ts(r.at)?;
        // SVC-032: the documents shown, and their acceptance, before anything else: without
        // acceptance nothing is created and the code is not spent.
        let documents = self.saas_documents().await?;
        let facts = documents
            .iter()
            .map(|d| d.facts())
            .collect::<Result<Vec<_>>>()?;
        check_documents_available(&facts, now)?;
        let required = documents_to_accept(&facts, now);
        check_acceptance(&required, &r.accepted_versions)?;

        let mut tx = self.inner.write.begin().await?;
        let latest = latest_code(&mut tx, &r.email).await?;
        let matches = latest
            .as_ref()
            .is_some_and(|(_, salt, hash, _)| same(&code_hash(salt, &r.code), hash));
        if let Err(refusal) = check_code(latest.as_ref().map(|(_, _, _, f)| f), matches, now) {
            // A wrong guess counts, and is committed even though nothing else happens.
            if let (Some((code_id, ..)), CodeRefusal::Wrong { .. } | CodeRefusal::Exhausted) =
                (&latest, refusal)
            {
                let mut up = Sql::new(
                    "UPDATE saas_registration_codes SET attempts = attempts + 1 WHERE code_id = ",
                );
                up.bind(*code_id);
                insert_row(&mut tx, &mut up).await?;
                tx.commit().await?;
            }
            return Err(klaxon_saas::registration::code_error(refusal).into());
        }
        let Some((code_id, ..)) = latest else {
            return Err(klaxon_saas::registration::code_error(CodeRefusal::None).into());
        };

        // SVC-008: an existing identity signs in with its password and gets one more tenant;
        // its new membership uses the same password hash, so one password signs in to all.
        let mut existing = Sql::new("SELECT password_hash FROM members WHERE LOWER(email) = ");
        existing
            .bind(normal(&r.email))
            .push(" AND status <> 'deleted' AND password_hash <> '' ORDER BY account_id");
        let hashes = existing
            .query_on(&tx)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|row| get_str(row, "password_hash"))
            .collect::<crate::Result<Vec<_>>>()?;
        let existing_identity = !hashes.is_empty();
        let password_hash = if existing_identity {
            match verify_password(r.password.clone(), hashes.clone()).await? {
                Some(i) => hashes[i].clone(),
                None => {
                    // A wrong password costs one of the code's tries, as a wrong code does:
                    // otherwise a code would allow unlimited guesses at the existing password,
                    // around the sign-in lockout.
                    let mut up = Sql::new(
                        "UPDATE saas_registration_codes SET attempts = attempts + 1 WHERE code_id = ",
                    );
                    up.bind(code_id);
                    insert_row(&mut tx, &mut up).await?;
                    tx.commit().await?;
                    return Err(invalid(
                        "password",
                        "this e-mail address already signs in to Klaxon: enter that password to add a new organisation to it",
                    ));
                }
            }
        } else {
            crate::bootstrap::hash_password(r.password.clone()).await?
        };

        let owner_name = r
            .email
            .split('@')
            .next()
            .unwrap_or(r.email.as_str())
            .to_string();
        let seed = BootstrapSeed {
            account_name: r.organisation.clone(),
            owner_email: r.email.trim().to_string(),
            owner_name,
            owner_password: String::new(),
            app_key: r.app_key.clone(),
            integration_key: r.integration_key.clone(),
        };
        let created = crate::bootstrap::insert_account(&mut tx, &seed, password_hash, r.at).await?;
        let account_id = created.account_id;
        let member_id = created.owner_member_id;

        // SVC-160 / SVC-210 / §0.4: a trial in this region, billed in its currency.
        let mut t = Sql::new(
            "INSERT INTO saas_tenants (account_id, profile, state, reason, since, edition, currency, region, created_at, updated_at) VALUES (",
        );
        t.bind(account_id)
            .push(", 'commercial', 'trial', '', ")
            .bind(r.at)
            .push(", ")
            .bind(settings.default_edition.as_str())
            .push(", ")
            .bind(settings.currency.code)
            .push(", ")
            .bind(r.region.as_str())
            .push(", ")
            .bind(r.at)
            .push(", ")
            .bind(r.at)
            .push(")");
        insert_row(&mut tx, &mut t).await?;
        let mut d = Sql::new(
            "INSERT INTO saas_tenant_directory (account_id, region, created_at, source) VALUES (",
        );
        d.bind(account_id)
            .push(", ")
            .bind(r.region.as_str())
            .push(", ")
            .bind(r.at)
            .push(", 'registration')");
        insert_row(&mut tx, &mut d).await?;
        let mut e = Sql::new(
            "INSERT INTO saas_legal_entities (account_id, entity_type, legal_name, verification, created_at, updated_at) VALUES (",
        );
        e.bind(account_id)
            .push(", ")
            .bind(r.entity_type.as_str())
            .push(", ")
            .bind(r.legal_name.as_str())
            .push(", 'unverified', ")
            .bind(r.at)
            .push(", ")
            .bind(r.at)
            .push(")");
        insert_row(&mut tx, &mut e).await?;
        let mut c = Sql::new(
            "INSERT INTO saas_contacts (account_id, owner_email, owner_email_verified_at, updated_at) VALUES (",
        );
        c.bind(account_id)
            .push(", ")
            .bind(r.email.trim())
            .push(", ")
            .bind(r.at)
            .push(", ")
            .bind(r.at)
            .push(")");
        insert_row(&mut tx, &mut c).await?;

        // SVC-032: one immutable record per version shown; tenant-level documents for the
        // tenant, person-level ones for the registrant.
        let evidence = serde_json::json!({
            "consent_label_id": CONSENT_LABEL_ID,
            "consent_label_sha256": sha256_hex(CONSENT_LABEL.as_bytes()),
        })
        .to_string();
        let mut acceptance_ids = Vec::new();
        for v in documents
            .iter()
            .filter(|v| required.contains(&v.version_id))
        {
            let person_key = match v.doc_type.level() {
                Level::Tenant => 0,
                Level::Person => member_id,
            };
            let mut a = Sql::new(
                "INSERT INTO saas_acceptances (account_id, version_id, person_key, member_id, login, \
                 role, doc_type, version, language, content_sha256, decision, method, decided_at, \
                 client_ip, user_agent, client_type, request_id, event_type, evidence, ends_at) VALUES (",
            );
            a.bind(account_id)
                .push(", ")
                .bind(v.version_id)
                .push(", ")
                .bind(person_key)
                .push(", ")
                .bind(member_id)
                .push(", ")
                .bind(r.email.trim())
                .push(", 'owner', ")
                .bind(v.doc_type.as_str())
                .push(", ")
                .bind(v.version.as_str())
                .push(", ")
                .bind(v.language.as_str())
                .push(", ")
                .bind(v.body_sha256.as_str())
                .push(", 'accepted', ")
                .bind(Method::ExplicitRegistration.as_str())
                .push(", ")
                .bind(r.at)
                .push(", ")
                .bind(r.client_ip.as_str())
                .push(", ")
                .bind(r.user_agent.as_str())
                .push(", ")
                .bind(r.client_type.as_str())
                .push(", ")
                .bind(r.request_id.as_str())
                .push(", '', ")
                .bind(evidence.as_str())
                .push(", 0) RETURNING acceptance_id");
            let row = a.query_on(&tx).fetch_one(&mut *tx).await?;
            acceptance_ids.push(get_i64(&row, "acceptance_id")?);
        }

        let mut used = Sql::new("UPDATE saas_registration_codes SET used_at = ");
        used.bind(r.at).push(" WHERE code_id = ").bind(code_id);
        insert_row(&mut tx, &mut used).await?;
        audit(
            &mut tx,
            account_id,
            r.at,
            &format!("member:{member_id}"),
            "register",
            &format!(
                "registered in {} as {} {:?} ({}identity {}), request {}",
                r.region,
                r.entity_type.as_str(),
                r.legal_name,
                if existing_identity {
                    "existing "
                } else {
                    "new "
                },
                r.email.trim(),
                r.request_id
            ),
        )
        .await?;
        tx.commit().await?;
        Ok(Registered {
            account_id,
            member_id,
            existing_identity,
            app_key: created.app_key,
            integration_key: created.integration_key,
            channel_id: created.channel_id,
            acceptance_ids,
        })
    }

    /// SVC-213: the region of a tenant, from the directory.
    pub async fn saas_directory_entry(&self, account_id: i64) -> Result<Option<DirectoryEntry>> {
        let mut sql = Sql::new(
            "SELECT account_id, region, created_at, source FROM saas_tenant_directory WHERE account_id = ",
        );
        sql.bind(account_id);
        match sql.query().fetch_optional(&self.inner.read).await? {
            Some(row) => Ok(Some(DirectoryEntry {
                account_id: get_i64(&row, "account_id")?,
                region: get_str(&row, "region")?,
                created_at: get_i64(&row, "created_at")?,
                source: get_str(&row, "source")?,
            })),
            None => Ok(None),
        }
    }

    /// SVC-215: a tenant never changes region. Asking for another one is refused by the
    /// rule (and the database refuses the update anyway); the same region is a no-op.
    pub async fn saas_set_region(&self, account_id: i64, region: &str) -> Result<()> {
        let current = self
            .saas_directory_entry(account_id)
            .await?
            .ok_or(SaasFailure::UnknownAccount(account_id))?;
        klaxon_saas::region::check_region_change(&current.region, region)?;
        Ok(())
    }

    /// The stored rows of the registration codes of an address (tests: no plain code is
    /// kept): (code_hash, attempts, used_at).
    pub async fn saas_registration_code_rows(
        &self,
        email: &str,
    ) -> Result<Vec<(String, i64, Millis)>> {
        let mut sql = Sql::new(
            "SELECT code_hash, attempts, used_at FROM saas_registration_codes WHERE email = ",
        );
        sql.bind(normal(email)).push(" ORDER BY code_id");
        let rows = sql.query().fetch_all(&self.inner.read).await?;
        rows.iter()
            .map(|r| {
                Ok((
                    get_str(r, "code_hash")?,
                    get_i64(r, "attempts")?,
                    get_i64(r, "used_at")?,
                ))
            })
            .collect()
    }

    /// The legal entity and the owner's contact e-mail of a tenant (SVC-002, SVC-005):
    /// (entity_type, legal_name, verification, owner_email).
    pub async fn saas_entity_and_contact(
        &self,
        account_id: i64,
    ) -> Result<Option<(String, String, String, String)>> {
        let mut sql = Sql::new(
            "SELECT e.entity_type, e.legal_name, e.verification, c.owner_email \
             FROM saas_legal_entities e JOIN saas_contacts c ON c.account_id = e.account_id \
             WHERE e.account_id = ",
        );
        sql.bind(account_id);
        match sql.query().fetch_optional(&self.inner.read).await? {
            Some(row) => Ok(Some((
                get_str(&row, "entity_type")?,
                get_str(&row, "legal_name")?,
                get_str(&row, "verification")?,
                get_str(&row, "owner_email")?,
            ))),
            None => Ok(None),
        }
    }
}
