//! Cross-region transfers (SVC-212, SVC-215; migration 0086): the owner's consents — given
//! and revoked through the Open API — and the transfers staff carry out under a consent or a
//! lawful order. Every transfer is checked again and recorded in one transaction, and written
//! to the tenant's own audit log (and its operator copy); one made under a lawful order is
//! tied to the request, so a non-disclosure order hides it from the tenant (SVC-224).

use klaxon_core::model::Millis;
use klaxon_saas::SaasError;
use klaxon_saas::transfer::{
    Basis, ConsentFacts, Purpose, authorise, check_destination, check_export_block,
    parse_categories,
};
use serde_json::json;
use sqlx::AnyConnection;
use sqlx::any::AnyRow;

use super::access::audit_pair;
use super::{Result, SaasFailure};
use crate::Store;
use crate::db::Sql;
use crate::rows::{get_i64, get_str};

/// What the owner consents to, with the request's evidence.
#[derive(Debug, Clone, Default)]
pub struct NewTransferConsent {
    pub account_id: i64,
    pub purpose: String,
    pub destination_region: String,
    pub categories: Vec<String>,
    pub member_id: i64,
    pub login: String,
    pub client_ip: String,
    pub user_agent: String,
    pub request_id: String,
}

/// A stored consent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferConsent {
    pub consent_id: i64,
    pub account_id: i64,
    pub purpose: String,
    pub destination_region: String,
    pub categories: Vec<String>,
    pub given_by: i64,
    pub given_by_login: String,
    pub given_at: Millis,
    pub client_ip: String,
    pub user_agent: String,
    pub request_id: String,
    /// 0 while in force.
    pub revoked_at: Millis,
    pub revoked_by: i64,
}

/// A transfer staff ask for: the tenant's full export package to `destination_region`.
#[derive(Debug, Clone)]
pub struct TransferRequest {
    pub account_id: i64,
    pub purpose: String,
    pub destination_region: String,
    /// A request on the lawful-request register of this tenant, the basis instead of a
    /// consent; 0 = none.
    pub lawful_request_id: i64,
}

/// A transfer carried out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferRecord {
    pub transfer_id: i64,
    pub account_id: i64,
    pub purpose: String,
    pub destination_region: String,
    pub categories: Vec<String>,
    pub consent_id: i64,
    pub lawful_request_id: i64,
    pub actor: String,
    pub at: Millis,
    pub package_sha256: String,
    /// When the destination reported the import done (0: not yet), who recorded it, and the
    /// tenant's account id there.
    pub completed_at: Millis,
    pub completed_by: String,
    pub destination_account_id: i64,
}

const CONSENT_COLUMNS: &str = "consent_id, account_id, purpose, destination_region, categories, \
    given_by, given_by_login, given_at, client_ip, user_agent, request_id, revoked_at, revoked_by";

const TRANSFER_COLUMNS: &str = "transfer_id, account_id, purpose, destination_region, categories, \
    consent_id, lawful_request_id, actor, at, package_sha256, completed_at, completed_by, \
    destination_account_id";

fn categories_of(row: &AnyRow) -> crate::Result<Vec<String>> {
    Ok(serde_json::from_str(&get_str(row, "categories")?).unwrap_or_default())
}

fn consent(row: &AnyRow) -> crate::Result<TransferConsent> {
    Ok(TransferConsent {
        consent_id: get_i64(row, "consent_id")?,
        account_id: get_i64(row, "account_id")?,
        purpose: get_str(row, "purpose")?,
        destination_region: get_str(row, "destination_region")?,
        categories: categories_of(row)?,
        given_by: get_i64(row, "given_by")?,
        given_by_login: get_str(row, "given_by_login")?,
        given_at: get_i64(row, "given_at")?,
        client_ip: get_str(row, "client_ip")?,
        user_agent: get_str(row, "user_agent")?,
        request_id: get_str(row, "request_id")?,
        revoked_at: get_i64(row, "revoked_at")?,
        revoked_by: get_i64(row, "revoked_by")?,
    })
}

fn transfer(row: &AnyRow) -> crate::Result<TransferRecord> {
    Ok(TransferRecord {
        transfer_id: get_i64(row, "transfer_id")?,
        account_id: get_i64(row, "account_id")?,
        purpose: get_str(row, "purpose")?,
        destination_region: get_str(row, "destination_region")?,
        categories: categories_of(row)?,
        consent_id: get_i64(row, "consent_id")?,
        lawful_request_id: get_i64(row, "lawful_request_id")?,
        actor: get_str(row, "actor")?,
        at: get_i64(row, "at")?,
        package_sha256: get_str(row, "package_sha256")?,
        completed_at: get_i64(row, "completed_at")?,
        completed_by: get_str(row, "completed_by")?,
        destination_account_id: get_i64(row, "destination_account_id")?,
    })
}

async fn consents_on(conn: &mut AnyConnection, account_id: i64) -> Result<Vec<TransferConsent>> {
    let mut sql = Sql::new(&format!(
        "SELECT {CONSENT_COLUMNS} FROM saas_transfer_consents WHERE account_id = "
    ));
    sql.bind(account_id).push(" ORDER BY consent_id");
    let rows = sql.query_on(conn).fetch_all(&mut *conn).await?;
    Ok(rows.iter().map(consent).collect::<crate::Result<_>>()?)
}

fn not_found(consent_id: i64) -> SaasFailure {
    SaasError::Invalid {
        field: "consent_id",
        message: format!("no transfer consent {consent_id} in this account"),
    }
    .into()
}

/// The decision of SVC-212 inside `conn`: the request's purpose and destination checked,
/// the lawful request (if named) found on this tenant's register, then [`authorise`].
async fn decide(
    conn: &mut AnyConnection,
    own_region: &str,
    req: &TransferRequest,
) -> Result<(Purpose, String, Basis)> {
    let purpose = Purpose::parse(&req.purpose)?;
    let destination = check_destination(&req.destination_region, own_region, &[])?;
    let lawful = if req.lawful_request_id != 0 {
        let mut sql = Sql::new("SELECT account_id FROM saas_lawful_requests WHERE request_id = ");
        sql.bind(req.lawful_request_id);
        match sql.query_on(conn).fetch_optional(&mut *conn).await? {
            Some(row) if get_i64(&row, "account_id")? == req.account_id => {
                Some(req.lawful_request_id)
            }
            _ => {
                return Err(SaasError::Invalid {
                    field: "lawful_request_id",
                    message: format!(
                        "no lawful request {} on the register for account {}",
                        req.lawful_request_id, req.account_id
                    ),
                }
                .into());
            }
        }
    } else {
        None
    };
    let facts = consents_on(conn, req.account_id)
        .await?
        .into_iter()
        .filter_map(|c| {
            Purpose::parse(&c.purpose).ok().map(|p| ConsentFacts {
                consent_id: c.consent_id,
                purpose: p,
                destination_region: c.destination_region,
                categories: c.categories,
                revoked: c.revoked_at != 0,
            })
        })
        .collect::<Vec<_>>();
    let basis = authorise(purpose, &destination, &facts, lawful)?;
    // SVC-232: an export block refuses a transfer under consent (not one under a lawful order).
    let mut sql = Sql::new("SELECT export_blocked FROM saas_tenants WHERE account_id = ");
    sql.bind(req.account_id);
    let blocked = match sql.query_on(conn).fetch_optional(&mut *conn).await? {
        Some(row) => get_str(&row, "export_blocked")?,
        None => String::new(),
    };
    check_export_block(basis, Some(&blocked))?;
    Ok((purpose, destination, basis))
}

impl Store {
    /// SVC-212: records the owner's consent to a transfer (purpose, destination region other
    /// than the tenant's own and, when the operator lists regions, one of them; data
    /// categories), with the request's evidence. The caller checks that it is the owner.
    pub async fn saas_give_transfer_consent(
        &self,
        own_region: &str,
        known_regions: &[String],
        c: &NewTransferConsent,
        now: Millis,
    ) -> Result<TransferConsent> {
        let purpose = Purpose::parse(&c.purpose)?;
        let destination = check_destination(&c.destination_region, own_region, known_regions)?;
        let categories = parse_categories(&c.categories)?;
        let mut tx = self.inner.write.begin().await?;
        // The login as it is now, kept with the consent (it may change later).
        let mut login = c.login.clone();
        if login.is_empty() {
            let mut sql = Sql::new("SELECT email FROM members WHERE member_id = ");
            sql.bind(c.member_id)
                .push(" AND account_id = ")
                .bind(c.account_id);
            if let Some(row) = sql.query_on(&tx).fetch_optional(&mut *tx).await? {
                login = get_str(&row, "email")?;
            }
        }
        let mut ins = Sql::new(
            "INSERT INTO saas_transfer_consents (account_id, purpose, destination_region, \
             categories, given_by, given_by_login, given_at, client_ip, user_agent, request_id) VALUES (",
        );
        ins.bind(c.account_id)
            .push(", ")
            .bind(purpose.as_str())
            .push(", ")
            .bind(destination.as_str())
            .push(", ")
            .bind(json!(categories).to_string())
            .push(", ")
            .bind(c.member_id)
            .push(", ")
            .bind(login.as_str())
            .push(", ")
            .bind(now)
            .push(", ")
            .bind(c.client_ip.as_str())
            .push(", ")
            .bind(c.user_agent.as_str())
            .push(", ")
            .bind(c.request_id.as_str())
            .push(") RETURNING consent_id");
        let row = ins.query_on(&tx).fetch_one(&mut *tx).await?;
        let id = get_i64(&row, "consent_id")?;
        super::audit(
            &mut tx,
            c.account_id,
            now,
            &format!("member:{}", c.member_id),
            "transfer_consent",
            &format!(
                "consent {id}: {} to {destination} of {}",
                purpose.as_str(),
                categories.join(", ")
            ),
        )
        .await?;
        let all = consents_on(&mut tx, c.account_id).await?;
        tx.commit().await?;
        all.into_iter()
            .find(|x| x.consent_id == id)
            .ok_or_else(|| not_found(id))
    }

    /// SVC-212: the owner withdraws a consent; transfers made before stand, none can rest on
    /// it afterwards. A consent of another tenant is unknown here; revoking twice is refused.
    pub async fn saas_revoke_transfer_consent(
        &self,
        account_id: i64,
        consent_id: i64,
        member_id: i64,
        now: Millis,
    ) -> Result<TransferConsent> {
        let mut tx = self.inner.write.begin().await?;
        let existing = consents_on(&mut tx, account_id)
            .await?
            .into_iter()
            .find(|c| c.consent_id == consent_id)
            .ok_or_else(|| not_found(consent_id))?;
        if existing.revoked_at != 0 {
            return Err(SaasError::Invalid {
                field: "consent_id",
                message: format!("consent {consent_id} was already revoked"),
            }
            .into());
        }
        let mut upd = Sql::new("UPDATE saas_transfer_consents SET revoked_at = ");
        upd.bind(now)
            .push(", revoked_by = ")
            .bind(member_id)
            .push(" WHERE consent_id = ")
            .bind(consent_id)
            .push(" AND account_id = ")
            .bind(account_id);
        upd.query_on(&tx).execute(&mut *tx).await?;
        super::audit(
            &mut tx,
            account_id,
            now,
            &format!("member:{member_id}"),
            "transfer_consent_revoke",
            &format!("consent {consent_id} revoked"),
        )
        .await?;
        let all = consents_on(&mut tx, account_id).await?;
        tx.commit().await?;
        all.into_iter()
            .find(|x| x.consent_id == consent_id)
            .ok_or_else(|| not_found(consent_id))
    }

    /// The tenant's consents, given and revoked, oldest first.
    pub async fn saas_transfer_consents(&self, account_id: i64) -> Result<Vec<TransferConsent>> {
        let mut conn = self.inner.read.acquire().await?;
        consents_on(&mut conn, account_id).await
    }

    /// SVC-212: whether staff may transfer the tenant's package now, and on which basis;
    /// refused (naming the rule or field) otherwise. Read-only: the package is built only
    /// after this passes, and [`Store::saas_record_transfer`] checks again.
    pub async fn saas_authorise_transfer(
        &self,
        own_region: &str,
        req: &TransferRequest,
    ) -> Result<Basis> {
        let mut conn = self.inner.write.acquire().await?;
        Ok(decide(&mut conn, own_region, req).await?.2)
    }

    /// SVC-212: checks the basis again and records the transfer of the package with hash
    /// `package_sha256`, in the tenant's audit log too, in one transaction. A consent revoked
    /// meanwhile refuses it and nothing is recorded (the package must then be discarded).
    pub async fn saas_record_transfer(
        &self,
        own_region: &str,
        req: &TransferRequest,
        package_sha256: &str,
        actor: &str,
        now: Millis,
    ) -> Result<TransferRecord> {
        let mut tx = self.inner.write.begin().await?;
        let (purpose, destination, basis) = decide(&mut tx, own_region, req).await?;
        let (consent_id, lawful_id) = match basis {
            Basis::Consent(id) => (id, 0),
            Basis::LawfulOrder(id) => (0, id),
        };
        let categories = json!(klaxon_saas::transfer::CATEGORIES).to_string();
        let mut ins = Sql::new(
            "INSERT INTO saas_transfers (account_id, purpose, destination_region, categories, \
             consent_id, lawful_request_id, actor, at, package_sha256) VALUES (",
        );
        ins.bind(req.account_id)
            .push(", ")
            .bind(purpose.as_str())
            .push(", ")
            .bind(destination.as_str())
            .push(", ")
            .bind(categories)
            .push(", ")
            .bind(consent_id)
            .push(", ")
            .bind(lawful_id)
            .push(", ")
            .bind(actor)
            .push(", ")
            .bind(now)
            .push(", ")
            .bind(package_sha256)
            .push(") RETURNING transfer_id");
        let row = ins.query_on(&tx).fetch_one(&mut *tx).await?;
        let transfer_id = get_i64(&row, "transfer_id")?;
        let body = json!({
            "transfer_id": transfer_id,
            "purpose": purpose.as_str(),
            "destination_region": destination,
            "consent_id": consent_id,
            "lawful_request_id": lawful_id,
            "package_sha256": package_sha256,
        })
        .to_string();
        audit_pair(
            &mut tx,
            req.account_id,
            now,
            "",
            actor,
            "staff",
            "transfer:cross_region",
            "transfer",
            &transfer_id.to_string(),
            "",
            true,
            true,
            &body,
            lawful_id,
        )
        .await?;
        let mut sql = Sql::new(&format!(
            "SELECT {TRANSFER_COLUMNS} FROM saas_transfers WHERE transfer_id = "
        ));
        sql.bind(transfer_id);
        let row = sql.query_on(&tx).fetch_one(&mut *tx).await?;
        let rec = transfer(&row)?;
        tx.commit().await?;
        Ok(rec)
    }

    /// SVC-215: the destination reported the import of a region migration done. In one
    /// transaction the transfer is marked complete (when, by whom, the tenant's account id
    /// there) and the source tenant goes to `purging`, so nothing is served or sent from it
    /// any more; the caller then runs the purge, whose certificate names the transfer. Refused
    /// with nothing changed: an unknown transfer, one made for an `export` (the source stays),
    /// one completed before, a tenant already purged, or one under a legal hold (SVC-192).
    pub async fn saas_complete_transfer(
        &self,
        settings: &super::SaasSettings,
        transfer_id: i64,
        destination_account_id: i64,
        actor: &str,
        now: Millis,
    ) -> Result<TransferRecord> {
        if destination_account_id <= 0 {
            return Err(SaasError::Invalid {
                field: "destination_account_id",
                message: "the tenant's account id in the destination region is required".into(),
            }
            .into());
        }
        let mut tx = self.inner.write.begin().await?;
        let mut sql = Sql::new(&format!(
            "SELECT {TRANSFER_COLUMNS} FROM saas_transfers WHERE transfer_id = "
        ));
        sql.bind(transfer_id);
        let Some(row) = sql.query_on(&tx).fetch_optional(&mut *tx).await? else {
            return Err(SaasError::Invalid {
                field: "transfer_id",
                message: format!("no transfer {transfer_id}"),
            }
            .into());
        };
        let t = transfer(&row)?;
        if t.purpose != Purpose::RegionMigration.as_str() {
            return Err(SaasError::Refused {
                rule: "SVC-215",
                message: format!(
                    "transfer {transfer_id} handed over an export, not a move of the tenant: the source stays"
                ),
            }
            .into());
        }
        if t.completed_at != 0 {
            return Err(SaasError::Invalid {
                field: "transfer_id",
                message: format!(
                    "transfer {transfer_id} was completed already (destination account {})",
                    t.destination_account_id
                ),
            }
            .into());
        }
        // The billing row is made on first use (an account that never had one is `active`).
        super::lock_tenant(&mut tx, settings, t.account_id, now).await?;
        let mut sql = Sql::new("SELECT state FROM saas_tenants WHERE account_id = ");
        sql.bind(t.account_id);
        let state = get_str(&sql.query_on(&tx).fetch_one(&mut *tx).await?, "state")?;
        if state == "purged" {
            return Err(SaasError::Invalid {
                field: "transfer_id",
                message: format!("account {} is purged already", t.account_id),
            }
            .into());
        }
        let mut sql =
            Sql::new("SELECT hold_id FROM saas_legal_holds WHERE lifted_at = 0 AND account_id = ");
        sql.bind(t.account_id).push(" AND starts_at <= ").bind(now);
        if let Some(row) = sql.query_on(&tx).fetch_optional(&mut *tx).await? {
            return Err(SaasError::Refused {
                rule: "SVC-192",
                message: format!(
                    "account {} is under legal hold {}: its data cannot be purged until the hold is lifted; nothing was changed",
                    t.account_id,
                    get_i64(&row, "hold_id")?
                ),
            }
            .into());
        }
        let mut upd = Sql::new("UPDATE saas_transfers SET completed_at = ");
        upd.bind(now)
            .push(", completed_by = ")
            .bind(actor)
            .push(", destination_account_id = ")
            .bind(destination_account_id)
            .push(" WHERE transfer_id = ")
            .bind(transfer_id);
        upd.query_on(&tx).execute(&mut *tx).await?;
        let mut upd = Sql::new("UPDATE saas_tenants SET state = 'purging', reason = '', since = ");
        upd.bind(now)
            .push(", updated_at = ")
            .bind(now)
            .push(" WHERE account_id = ")
            .bind(t.account_id);
        upd.query_on(&tx).execute(&mut *tx).await?;
        super::audit(
            &mut tx,
            t.account_id,
            now,
            actor,
            "transfer_complete",
            &format!(
                "transfer {transfer_id}: imported in {} as account {destination_account_id}; {state} -> purging (SVC-215)",
                t.destination_region
            ),
        )
        .await?;
        let mut sql = Sql::new(&format!(
            "SELECT {TRANSFER_COLUMNS} FROM saas_transfers WHERE transfer_id = "
        ));
        sql.bind(transfer_id);
        let row = sql.query_on(&tx).fetch_one(&mut *tx).await?;
        let rec = transfer(&row)?;
        tx.commit().await?;
        Ok(rec)
    }

    /// One transfer by id (any tenant's: the operator's view).
    pub async fn saas_transfer(&self, transfer_id: i64) -> Result<Option<TransferRecord>> {
        let mut sql = Sql::new(&format!(
            "SELECT {TRANSFER_COLUMNS} FROM saas_transfers WHERE transfer_id = "
        ));
        sql.bind(transfer_id);
        let row = sql.query().fetch_optional(&self.inner.read).await?;
        Ok(row.as_ref().map(transfer).transpose()?)
    }

    /// The tenant's cross-region transfers, oldest first.
    pub async fn saas_transfers(&self, account_id: i64) -> Result<Vec<TransferRecord>> {
        let mut sql = Sql::new(&format!(
            "SELECT {TRANSFER_COLUMNS} FROM saas_transfers WHERE account_id = "
        ));
        sql.bind(account_id).push(" ORDER BY transfer_id");
        let rows = sql.query().fetch_all(&self.inner.read).await?;
        Ok(rows.iter().map(transfer).collect::<crate::Result<_>>()?)
    }
}
