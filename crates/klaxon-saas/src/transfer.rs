//! Cross-region transfers (SVC-211, SVC-212, SVC-215): a tenant's data leaves its region only
//! with the owner's explicit recorded consent — purpose, destination region, data categories
//! — or under a lawful order (SVC-224). Pure: the vocabulary of a consent and the decision
//! whether a transfer may go ahead and on which basis; the store keeps the consents and the
//! transfers, and audits every use.

use std::collections::BTreeSet;

use crate::error::{Result, SaasError};

/// Why the data leaves the region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// A staff-assisted move of the tenant to another region (SVC-215).
    RegionMigration,
    /// An export package handed over outside the region (SVC-211 keeps exports in the
    /// region otherwise).
    Export,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::RegionMigration => "region_migration",
            Purpose::Export => "export",
        }
    }

    pub fn parse(text: &str) -> Result<Purpose> {
        match text.trim() {
            "region_migration" => Ok(Purpose::RegionMigration),
            "export" => Ok(Purpose::Export),
            other => Err(SaasError::invalid(
                "purpose",
                format!("{other:?}: one of region_migration, export"),
            )),
        }
    }
}

/// The data categories a consent names. A transfer package is the tenant's full export
/// (SVC-182), which holds every one of them.
pub const CATEGORIES: [&str; 4] = [
    "configuration",
    "incidents_and_alerts",
    "members_and_contacts",
    "audit_log",
];

/// Checks and normalises the categories of a consent: at least one, each known, no
/// repeats; sorted.
pub fn parse_categories(given: &[String]) -> Result<Vec<String>> {
    if given.is_empty() {
        return Err(SaasError::invalid(
            "categories",
            format!("name at least one of {}", CATEGORIES.join(", ")),
        ));
    }
    let mut out = BTreeSet::new();
    for c in given {
        let c = c.trim();
        if !CATEGORIES.contains(&c) {
            return Err(SaasError::invalid(
                "categories",
                format!("{c:?} is not a data category ({})", CATEGORIES.join(", ")),
            ));
        }
        if !out.insert(c.to_string()) {
            return Err(SaasError::invalid(
                "categories",
                format!("{c:?} is named twice"),
            ));
        }
    }
    Ok(out.into_iter().collect())
}

/// Checks a region id: the destination of a transfer. It may not be the tenant's own region
/// (that is no transfer) and, when the operator lists its regions, must be one of them.
pub fn check_destination(destination: &str, own_region: &str, known: &[String]) -> Result<String> {
    let d = destination.trim();
    if d.is_empty() {
        return Err(SaasError::invalid("destination_region", "is required"));
    }
    if d == own_region {
        return Err(SaasError::invalid(
            "destination_region",
            format!("{d:?} is the tenant's own region: nothing leaves it"),
        ));
    }
    if !known.is_empty() && !known.iter().any(|k| k == d) {
        return Err(SaasError::invalid(
            "destination_region",
            format!(
                "{d:?} is not one of the operator's regions ({})",
                known.join(", ")
            ),
        ));
    }
    Ok(d.to_string())
}

/// A stored consent as the decision needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentFacts {
    pub consent_id: i64,
    pub purpose: Purpose,
    pub destination_region: String,
    pub categories: Vec<String>,
    pub revoked: bool,
}

/// What a transfer rests on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basis {
    Consent(i64),
    LawfulOrder(i64),
}

/// SVC-232: a tenant terminated for serious breach may have its export blocked, on a legal
/// basis staff record. A transfer resting on the owner's consent hands over the export
/// package, so the block refuses it as it refuses the export itself; a lawful order is a
/// decision of an authority and still goes ahead. `export_blocked` is the recorded basis,
/// `None` (or empty) when there is no block.
pub fn check_export_block(basis: Basis, export_blocked: Option<&str>) -> Result<()> {
    match (
        basis,
        export_blocked.map(str::trim).filter(|b| !b.is_empty()),
    ) {
        (Basis::Consent(_), Some(why)) => Err(SaasError::refused(
            "SVC-232",
            format!(
                "the tenant's export is blocked ({why}); a transfer under the owner's consent is an export and is refused until staff lift the block; nothing was transferred"
            ),
        )),
        _ => Ok(()),
    }
}

/// SVC-212: whether a transfer of the full package for `purpose` to `destination` may go
/// ahead. A lawful order on the register for this tenant (`lawful_request`, checked by the
/// store) is a basis of its own; otherwise the latest unrevoked consent with the same purpose
/// and destination that names every data category. Anything else is refused and nothing
/// leaves the region.
pub fn authorise(
    purpose: Purpose,
    destination: &str,
    consents: &[ConsentFacts],
    lawful_request: Option<i64>,
) -> Result<Basis> {
    if let Some(id) = lawful_request {
        return Ok(Basis::LawfulOrder(id));
    }
    consents
        .iter()
        .filter(|c| {
            !c.revoked
                && c.purpose == purpose
                && c.destination_region == destination
                && CATEGORIES
                    .iter()
                    .all(|k| c.categories.iter().any(|g| g == k))
        })
        .map(|c| c.consent_id)
        .max()
        .map(Basis::Consent)
        .ok_or_else(|| {
            SaasError::refused(
                "SVC-212",
                format!(
                    "no consent of the owner covers a {} of all data categories to {destination}, and no lawful order was given; nothing was transferred",
                    purpose.as_str()
                ),
            )
        })
}
