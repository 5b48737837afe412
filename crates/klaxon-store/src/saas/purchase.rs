//! Acceptance at purchase (SVC-033, migration 0086): every order carries who accepted the
//! terms in force for the tenant, when and from where. [`accept_for_order`] runs inside the
//! order's own transaction, after the order row exists, so an order and its acceptance are
//! written together or not at all, and an order without acceptance is refused unchanged.
//!
//! Two records: the tenant's decision on each version (`saas_acceptances`, method
//! `explicit_purchase`) when this order is its first decision on it — so a later use event
//! does not record a deemed acceptance of a version the tenant already accepted — and one
//! `saas_order_acceptances` row per order and version, whatever the earlier decisions.

use klaxon_core::model::Millis;
use klaxon_saas::agreement::Method;
use klaxon_saas::purchase::{AcceptorRole, check_origin, check_purchase_acceptance};
use serde_json::json;
use sqlx::AnyConnection;

use super::agreements::load_documents_on;
use super::{Result, audit, ts};
use crate::Store;
use crate::db::Sql;
use crate::rows::{get_i64, get_str};

/// What an order brings as its acceptance (SVC-033): the person who accepted — the owner or
/// an admin, by login — and the evidence of where (client IP, or the reference of the signed
/// order form when staff key in an order on the tenant's behalf).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PurchaseAcceptance {
    /// The login (e-mail address) of the member who accepted.
    pub accepted_by: String,
    /// Client IP address, or the reference of the signed order form.
    pub accepted_from: String,
    pub user_agent: String,
    /// `web`, `api` or `staff` (keyed in by the operator on the tenant's behalf).
    pub client_type: String,
    pub request_id: String,
}

/// One stored order acceptance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderAcceptance {
    pub order_acceptance_id: i64,
    pub account_id: i64,
    /// `licence`, `renewal`, `pack`, `postpaid`, `conversion`.
    pub order_kind: String,
    pub order_ref: String,
    pub version_id: i64,
    pub acceptance_id: i64,
    pub doc_type: String,
    pub version: String,
    pub content_sha256: String,
    pub member_id: i64,
    pub login: String,
    pub role: String,
    pub accepted_at: Millis,
    pub client_ip: String,
    pub user_agent: String,
    pub client_type: String,
    pub request_id: String,
    pub recorded_by: String,
}

const COLUMNS: &str = "order_acceptance_id, account_id, order_kind, order_ref, version_id, \
    acceptance_id, doc_type, version, content_sha256, member_id, login, role, accepted_at, \
    client_ip, user_agent, client_type, request_id, recorded_by";

fn record(row: &sqlx::any::AnyRow) -> crate::Result<OrderAcceptance> {
    Ok(OrderAcceptance {
        order_acceptance_id: get_i64(row, "order_acceptance_id")?,
        account_id: get_i64(row, "account_id")?,
        order_kind: get_str(row, "order_kind")?,
        order_ref: get_str(row, "order_ref")?,
        version_id: get_i64(row, "version_id")?,
        acceptance_id: get_i64(row, "acceptance_id")?,
        doc_type: get_str(row, "doc_type")?,
        version: get_str(row, "version")?,
        content_sha256: get_str(row, "content_sha256")?,
        member_id: get_i64(row, "member_id")?,
        login: get_str(row, "login")?,
        role: get_str(row, "role")?,
        accepted_at: get_i64(row, "accepted_at")?,
        client_ip: get_str(row, "client_ip")?,
        user_agent: get_str(row, "user_agent")?,
        client_type: get_str(row, "client_type")?,
        request_id: get_str(row, "request_id")?,
        recorded_by: get_str(row, "recorded_by")?,
    })
}

/// The member behind a login in the account, with their role for SVC-033.
async fn acceptor(
    conn: &mut AnyConnection,
    account_id: i64,
    login: &str,
) -> Result<Option<(i64, String, AcceptorRole)>> {
    let mut sql =
        Sql::new("SELECT member_id, email, role_ids, is_owner FROM members WHERE account_id = ");
    sql.bind(account_id)
        .push(" AND status <> 'deleted' AND LOWER(email) = ")
        .bind(login.trim().to_lowercase());
    let Some(row) = sql.query_on(conn).fetch_optional(&mut *conn).await? else {
        return Ok(None);
    };
    let roles: Vec<i64> = serde_json::from_str(&get_str(&row, "role_ids")?).unwrap_or_default();
    let role = if get_i64(&row, "is_owner")? != 0 {
        AcceptorRole::Owner
    } else if roles.contains(&klaxon_core::directory::ROLE_ADMIN) {
        AcceptorRole::Admin
    } else {
        AcceptorRole::Other
    };
    Ok(Some((
        get_i64(&row, "member_id")?,
        get_str(&row, "email")?,
        role,
    )))
}

/// SVC-033: checks and records the acceptance of an order, in the order's transaction.
/// `None` (no acceptance given) refuses the order; so does an acceptor who is not the owner
/// or an admin, no terms of service in force, or a version the tenant refused.
pub(crate) async fn accept_for_order(
    conn: &mut AnyConnection,
    account_id: i64,
    acceptance: Option<&PurchaseAcceptance>,
    order_kind: &str,
    order_ref: &str,
    now: Millis,
    actor: &str,
) -> Result<Vec<i64>> {
    let at = ts(now)?;
    let documents = load_documents_on(conn).await?;
    let facts = documents
        .iter()
        .map(|d| d.facts())
        .collect::<Result<Vec<_>>>()?;
    let found = match acceptance {
        Some(a) if !a.accepted_by.trim().is_empty() => {
            check_origin(&a.accepted_from)?;
            match acceptor(conn, account_id, &a.accepted_by).await? {
                Some(found) => Some(found),
                None => {
                    return Err(klaxon_saas::SaasError::Invalid {
                        field: "accepted_by",
                        message: format!(
                            "{:?} is not a member of account {account_id}",
                            a.accepted_by.trim()
                        ),
                    }
                    .into());
                }
            }
        }
        _ => None,
    };
    let mut refused = Vec::new();
    let mut sql = Sql::new(
        "SELECT version_id FROM saas_acceptances WHERE decision = 'refused' AND account_id = ",
    );
    sql.bind(account_id);
    for row in sql.query_on(conn).fetch_all(&mut *conn).await? {
        refused.push(get_i64(&row, "version_id")?);
    }
    let versions =
        check_purchase_acceptance(&facts, at, found.as_ref().map(|(_, _, role)| *role), |id| {
            refused.contains(&id)
        })?;
    let (Some(a), Some((member_id, login, role))) = (acceptance, found) else {
        // check_purchase_acceptance refuses a missing acceptor; nothing to record.
        return Ok(Vec::new());
    };
    let origin = check_origin(&a.accepted_from)?;
    let mut ids = Vec::new();
    for v in documents
        .iter()
        .filter(|d| versions.contains(&d.version_id))
    {
        // Only tenant-level documents (ToS, SLA) are required at purchase: person_key 0.
        let mut find = Sql::new(
            "SELECT acceptance_id FROM saas_acceptances WHERE person_key = 0 AND account_id = ",
        );
        find.bind(account_id)
            .push(" AND version_id = ")
            .bind(v.version_id);
        let acceptance_id = match find.query_on(conn).fetch_optional(&mut *conn).await? {
            Some(row) => get_i64(&row, "acceptance_id")?,
            None => {
                let evidence =
                    json!({ "order_kind": order_kind, "order_ref": order_ref }).to_string();
                let mut ins = Sql::new(
                    "INSERT INTO saas_acceptances (account_id, version_id, person_key, member_id, login, \
                     role, doc_type, version, language, content_sha256, decision, method, decided_at, \
                     client_ip, user_agent, client_type, request_id, event_type, evidence, ends_at) VALUES (",
                );
                ins.bind(account_id)
                    .push(", ")
                    .bind(v.version_id)
                    .push(", 0, ")
                    .bind(member_id)
                    .push(", ")
                    .bind(login.as_str())
                    .push(", ")
                    .bind(role.as_str())
                    .push(", ")
                    .bind(v.doc_type.as_str())
                    .push(", ")
                    .bind(v.version.as_str())
                    .push(", ")
                    .bind(v.language.as_str())
                    .push(", ")
                    .bind(v.body_sha256.as_str())
                    .push(", 'accepted', ")
                    .bind(Method::ExplicitPurchase.as_str())
                    .push(", ")
                    .bind(now)
                    .push(", ")
                    .bind(origin.as_str())
                    .push(", ")
                    .bind(a.user_agent.as_str())
                    .push(", ")
                    .bind(a.client_type.as_str())
                    .push(", ")
                    .bind(a.request_id.as_str())
                    .push(", '', ")
                    .bind(evidence)
                    .push(", 0) RETURNING acceptance_id");
                let row = ins.query_on(conn).fetch_one(&mut *conn).await?;
                get_i64(&row, "acceptance_id")?
            }
        };
        let mut ins = Sql::new(
            "INSERT INTO saas_order_acceptances (account_id, order_kind, order_ref, version_id, \
             acceptance_id, doc_type, version, content_sha256, member_id, login, role, accepted_at, \
             client_ip, user_agent, client_type, request_id, recorded_by) VALUES (",
        );
        ins.bind(account_id)
            .push(", ")
            .bind(order_kind)
            .push(", ")
            .bind(order_ref)
            .push(", ")
            .bind(v.version_id)
            .push(", ")
            .bind(acceptance_id)
            .push(", ")
            .bind(v.doc_type.as_str())
            .push(", ")
            .bind(v.version.as_str())
            .push(", ")
            .bind(v.body_sha256.as_str())
            .push(", ")
            .bind(member_id)
            .push(", ")
            .bind(login.as_str())
            .push(", ")
            .bind(role.as_str())
            .push(", ")
            .bind(now)
            .push(", ")
            .bind(origin.as_str())
            .push(", ")
            .bind(a.user_agent.as_str())
            .push(", ")
            .bind(a.client_type.as_str())
            .push(", ")
            .bind(a.request_id.as_str())
            .push(", ")
            .bind(actor)
            .push(") RETURNING order_acceptance_id");
        let row = ins.query_on(conn).fetch_one(&mut *conn).await?;
        ids.push(get_i64(&row, "order_acceptance_id")?);
        audit(
            conn,
            account_id,
            now,
            actor,
            "purchase_acceptance",
            &format!(
                "{order_kind} {order_ref}: {} {} accepted by {} ({}) from {}",
                v.doc_type.as_str(),
                v.version,
                login,
                role.as_str(),
                origin
            ),
        )
        .await?;
    }
    Ok(ids)
}

impl Store {
    /// The acceptances recorded with the tenant's orders (SVC-033), oldest first.
    pub async fn saas_order_acceptances(&self, account_id: i64) -> Result<Vec<OrderAcceptance>> {
        let mut sql = Sql::new(&format!(
            "SELECT {COLUMNS} FROM saas_order_acceptances WHERE account_id = "
        ));
        sql.bind(account_id).push(" ORDER BY order_acceptance_id");
        let rows = sql.query().fetch_all(&self.inner.read).await?;
        Ok(rows.iter().map(record).collect::<crate::Result<_>>()?)
    }
}
