//! The destination's half of a staff-assisted move between regions (SVC-215; migration
//! 0088): the package `klaxon admin tenant transfer` wrote at the source becomes a new tenant
//! here, in one transaction, with where it came from recorded. The rows are written by the
//! same code as a per-account restore ([`crate::purge::write_rows`]). Every region numbers its
//! rows from 1, so the package's ids are not kept: the tenant gets a new account id, every row
//! with a numbered identity a fresh id of this database, and every reference (columns, lists,
//! ids inside JSON documents) is rewritten with the old → new maps of the reference catalogue
//! ([`crate::id_map`]), before anything is written. 24-hex object ids (incidents, alerts,
//! rules, …) are random and kept; should one be held here already, the import is refused.
//!
//! What the export left out stays out: secrets are filled with empty values (or, for an
//! integration key, a new random key, since it must be unique), and one-time codes whose
//! secret part is missing are not imported at all.

use klaxon_core::model::Millis;
use klaxon_saas::SaasError;
use serde_json::json;
use sqlx::AnyConnection;
use sqlx::any::AnyRow;

use super::access::audit_pair;
use super::{Result, SaasSettings};
use crate::Store;
use crate::db::{Sql, is_sqlite};
use crate::export::{TABLES, TableClass};
use crate::id_map;
use crate::purge::{BackupTable, Fill, advance_identities, bad_backup, write_rows};
use crate::rows::{get_i64, get_str};

/// Secret columns without a default that an imported row must still carry.
const FILL: &[(&str, &[(&str, Fill)])] = &[
    ("integrations", &[("integration_key", Fill::Fresh)]),
    ("webhook_integrations", &[("signing_secret", Fill::Empty)]),
    (
        "im_integrations",
        &[("bot_token", Fill::Empty), ("signing_secret", Fill::Empty)],
    ),
    ("sso_configs", &[("secret", Fill::Empty)]),
    // A new topic: the member subscribes their phone again at the new region.
    ("push_devices", &[("topic", Fill::Fresh)]),
];

/// Tables of one-time codes: their secret half is left out of a package, so the rest is of
/// no use and is not imported.
const NOT_IMPORTED: &[&str] = &["im_link_codes", "im_card_codes"];

/// A package to import, as the operator hands it over.
#[derive(Debug, Clone)]
pub struct TransferImport {
    /// The region the package comes from (the source deployment's).
    pub source_region: String,
    /// The tenant's account id there (from the package's manifest).
    pub source_account_id: i64,
    /// The transfer recorded at the source (`klaxon admin tenant transfers`).
    pub source_transfer_id: i64,
    /// The package's SHA-256, checked by the caller against the bytes.
    pub package_sha256: String,
    /// When the source built the package (from the manifest).
    pub exported_at: Millis,
    pub tables: Vec<BackupTable>,
}

/// An import carried out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferImportRecord {
    pub import_id: i64,
    /// The new tenant's account id in this region.
    pub account_id: i64,
    pub source_region: String,
    pub source_account_id: i64,
    pub source_transfer_id: i64,
    pub package_sha256: String,
    pub exported_at: Millis,
    pub rows_imported: i64,
    pub actor: String,
    pub imported_at: Millis,
}

const COLUMNS: &str = "import_id, account_id, source_region, source_account_id, \
    source_transfer_id, package_sha256, exported_at, rows_imported, actor, imported_at";

fn record(row: &AnyRow) -> crate::Result<TransferImportRecord> {
    Ok(TransferImportRecord {
        import_id: get_i64(row, "import_id")?,
        account_id: get_i64(row, "account_id")?,
        source_region: get_str(row, "source_region")?,
        source_account_id: get_i64(row, "source_account_id")?,
        source_transfer_id: get_i64(row, "source_transfer_id")?,
        package_sha256: get_str(row, "package_sha256")?,
        exported_at: get_i64(row, "exported_at")?,
        rows_imported: get_i64(row, "rows_imported")?,
        actor: get_str(row, "actor")?,
        imported_at: get_i64(row, "imported_at")?,
    })
}

fn invalid(field: &'static str, message: String) -> super::SaasFailure {
    SaasError::Invalid { field, message }.into()
}

/// A new account id: above every id this region ever gave a tenant, the purged ones included
/// (their operator records stay).
async fn new_account_id(conn: &mut AnyConnection) -> Result<i64> {
    let mut max = 0;
    for table in [
        "accounts",
        "saas_tenants",
        "saas_tenant_directory",
        "tenant_keys",
        "purge_certificates",
    ] {
        let text = format!("SELECT COALESCE(MAX(account_id), 0) AS n FROM {table}");
        let row = Sql::new(&text).query_on(conn).fetch_one(&mut *conn).await?;
        max = max.max(get_i64(&row, "n")?);
    }
    Ok(max + 1)
}

impl Store {
    /// SVC-215: imports a transfer package as a new tenant of this region, in one
    /// transaction: its rows under a new account id, the tenant's billing row (`active`, in
    /// this region), its directory entry (source `transfer`) and owner contact, the record of
    /// where it came from, and an entry in the new tenant's audit log. Rows are renumbered
    /// ([`crate::id_map`]), so the package imports whatever ids this region's tenants hold.
    /// Refused, with nothing written, when the package comes from this very region, when the
    /// package or the source transfer was imported before, or when a row does not fit this
    /// schema or reuses an object id (24-hex, kept as exported) another tenant here holds.
    pub async fn saas_import_transfer(
        &self,
        settings: &SaasSettings,
        import: &TransferImport,
        actor: &str,
        now: Millis,
    ) -> Result<TransferImportRecord> {
        let source_region = import.source_region.trim();
        if source_region.is_empty() {
            return Err(invalid("source_region", "is required".into()));
        }
        if source_region == settings.region {
            return Err(invalid(
                "source_region",
                format!(
                    "{source_region:?} is this deployment's own region: the data is already here, nothing to import"
                ),
            ));
        }
        if import.source_transfer_id <= 0 {
            return Err(invalid(
                "source_transfer_id",
                "the transfer's id at the source is required".into(),
            ));
        }
        for t in &import.tables {
            let known = TABLES.iter().any(|(name, class)| {
                *name == t.table && matches!(class, TableClass::Exported { .. })
            });
            if !known {
                return Err(bad_backup(format!(
                    "table {:?} is not a table a transfer package holds",
                    t.table
                ))
                .into());
            }
        }
        let owner = import
            .tables
            .iter()
            .find(|t| t.table == "members")
            .and_then(|t| {
                t.rows.iter().find(|r| {
                    r.get("is_owner").and_then(|v| v.as_i64()) == Some(1)
                        && r.get("status").and_then(|v| v.as_str()) != Some("deleted")
                })
            })
            .and_then(|r| r.get("email").and_then(|v| v.as_str()).map(str::to_string))
            .unwrap_or_default();
        if !import
            .tables
            .iter()
            .any(|t| t.table == "accounts" && t.rows.len() == 1)
        {
            return Err(bad_backup("the package holds no account row".into()).into());
        }

        let mut tx = self.inner.write.begin().await?;
        let mut seen = Sql::new(&format!(
            "SELECT {COLUMNS} FROM saas_transfer_imports WHERE package_sha256 = "
        ));
        seen.bind(import.package_sha256.as_str())
            .push(" OR (source_region = ")
            .bind(source_region)
            .push(" AND source_transfer_id = ")
            .bind(import.source_transfer_id)
            .push(")");
        if let Some(row) = seen.query_on(&tx).fetch_optional(&mut *tx).await? {
            let before = record(&row)?;
            return Err(invalid(
                "package",
                format!(
                    "transfer {} of {} (sha256 {}) was imported already, as account {} (import {}); nothing was imported",
                    before.source_transfer_id,
                    before.source_region,
                    before.package_sha256,
                    before.account_id,
                    before.import_id
                ),
            ));
        }
        let account_id = new_account_id(&mut tx).await?;
        // Every fresh id first (the one-time codes are not imported, so not numbered), then
        // the rows, renumbered, in the same transaction.
        let packaged: Vec<(&str, &[serde_json::Map<String, serde_json::Value>])> = import
            .tables
            .iter()
            .filter(|t| !NOT_IMPORTED.contains(&t.table.as_str()))
            .map(|t| (t.table.as_str(), t.rows.as_slice()))
            .collect();
        let maps = id_map::allocate(&mut tx, &packaged, import.source_account_id, account_id)
            .await
            .map_err(|e| match e {
                crate::StoreError::Corrupt(m) => {
                    invalid("package", format!("{m}; nothing was imported"))
                }
                other => other.into(),
            })?;
        let mut rows_imported = 0i64;
        // TABLES order: referenced tables (accounts, teams) come before their referrers.
        for (table, _) in TABLES {
            if NOT_IMPORTED.contains(table) {
                continue;
            }
            let Some(t) = import.tables.iter().find(|t| t.table == *table) else {
                continue;
            };
            let fill = FILL
                .iter()
                .find(|(name, _)| name == table)
                .map_or(&[][..], |(_, f)| *f);
            let rows = id_map::renumber(table, &t.rows, &maps)
                .map_err(|e| invalid("package", format!("{e}; nothing was imported")))?;
            if let Err(e) = write_rows(
                &mut tx,
                table,
                &rows,
                import.source_account_id,
                account_id,
                fill,
            )
            .await
            {
                if matches!(e, crate::StoreError::Corrupt(_)) {
                    return Err(e.into());
                }
                return Err(invalid(
                    "package",
                    format!(
                        "{table}: its rows cannot be written here ({e}); an object id kept \
                         as exported may already be used in this region; nothing was imported"
                    ),
                ));
            }
            if !is_sqlite(&tx) && !t.rows.is_empty() {
                advance_identities(&mut tx, table).await?;
            }
            rows_imported += t.rows.len() as i64;
        }
        super::insert_default_tenant(&mut tx, settings, account_id, now).await?;
        let mut dir = Sql::new(
            "INSERT INTO saas_tenant_directory (account_id, region, created_at, source) VALUES (",
        );
        dir.bind(account_id)
            .push(", ")
            .bind(settings.region.as_str())
            .push(", ")
            .bind(now)
            .push(", 'transfer')");
        dir.query_on(&tx).execute(&mut *tx).await?;
        if !owner.is_empty() {
            let mut c = Sql::new(
                "INSERT INTO saas_contacts (account_id, owner_email, updated_at) VALUES (",
            );
            c.bind(account_id)
                .push(", ")
                .bind(owner.as_str())
                .push(", ")
                .bind(now)
                .push(") ON CONFLICT (account_id) DO NOTHING");
            c.query_on(&tx).execute(&mut *tx).await?;
        }
        let mut rec = Sql::new(
            "INSERT INTO saas_transfer_imports (account_id, source_region, source_account_id, \
             source_transfer_id, package_sha256, exported_at, rows_imported, actor, imported_at) VALUES (",
        );
        rec.bind(account_id)
            .push(", ")
            .bind(source_region)
            .push(", ")
            .bind(import.source_account_id)
            .push(", ")
            .bind(import.source_transfer_id)
            .push(", ")
            .bind(import.package_sha256.as_str())
            .push(", ")
            .bind(import.exported_at)
            .push(", ")
            .bind(rows_imported)
            .push(", ")
            .bind(actor)
            .push(", ")
            .bind(now)
            .push(") RETURNING import_id");
        let row = rec.query_on(&tx).fetch_one(&mut *tx).await?;
        let import_id = get_i64(&row, "import_id")?;
        let body = json!({
            "import_id": import_id,
            "source_region": source_region,
            "source_account_id": import.source_account_id,
            "source_transfer_id": import.source_transfer_id,
            "package_sha256": import.package_sha256,
            "rows": rows_imported,
        })
        .to_string();
        audit_pair(
            &mut tx,
            account_id,
            now,
            "",
            actor,
            "staff",
            "transfer:import",
            "transfer",
            &import.source_transfer_id.to_string(),
            "",
            true,
            true,
            &body,
            0,
        )
        .await?;
        let mut sql = Sql::new(&format!(
            "SELECT {COLUMNS} FROM saas_transfer_imports WHERE import_id = "
        ));
        sql.bind(import_id);
        let row = sql.query_on(&tx).fetch_one(&mut *tx).await?;
        let out = record(&row)?;
        tx.commit().await?;
        Ok(out)
    }

    /// The packages imported into this region, oldest first.
    pub async fn saas_transfer_imports(&self) -> Result<Vec<TransferImportRecord>> {
        let sql = Sql::new(&format!(
            "SELECT {COLUMNS} FROM saas_transfer_imports ORDER BY import_id"
        ));
        let rows = sql.query().fetch_all(&self.inner.read).await?;
        Ok(rows.iter().map(record).collect::<crate::Result<_>>()?)
    }
}
