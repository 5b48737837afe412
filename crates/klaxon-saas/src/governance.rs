//! Legal holds (SVC-192) and data-security incident records (SVC-194): what staff record,
//! which tenant deletions a hold blocks, when a held purge runs, and the texts of the notices
//! the tenant is given. Pure: the caller passes the time and the stored records in.

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;

use crate::calendar::date_of;
use crate::error::{Result, SaasError};

/// Longest authority reference, impact or remediation text: a summary, never a document.
pub const MAX_TEXT_CHARS: usize = 2000;
/// Most tenants one incident record names.
pub const MAX_INCIDENT_TENANTS: usize = 10_000;

/// What a hold keeps (its scope). `All` holds every piece of the tenant's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HeldData {
    All,
    /// Incidents, their alerts and timelines (`/incident/bulk-delete`).
    Incidents,
    /// Configuration: channels, integrations, rules, schedules, templates … (`…/delete`).
    Configuration,
    /// Member profiles inside the tenant (`/member/delete`).
    Members,
}

impl HeldData {
    pub const ALL: [HeldData; 4] = [
        HeldData::All,
        HeldData::Incidents,
        HeldData::Configuration,
        HeldData::Members,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            HeldData::All => "all",
            HeldData::Incidents => "incidents",
            HeldData::Configuration => "configuration",
            HeldData::Members => "members",
        }
    }

    pub fn parse(text: &str) -> Result<HeldData> {
        HeldData::ALL
            .into_iter()
            .find(|d| d.as_str() == text)
            .ok_or_else(|| {
                SaasError::invalid(
                    "scope",
                    format!(
                        "{text:?} is not a scope of a hold; use all, incidents, configuration or members"
                    ),
                )
            })
    }
}

/// The scope of a hold: a set of [`HeldData`], `all` alone when it holds everything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldScope(Vec<HeldData>);

impl HoldScope {
    /// A comma-separated list, e.g. `incidents,members`; `all` absorbs the rest.
    pub fn parse(text: &str) -> Result<HoldScope> {
        let mut items = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            items.push(HeldData::parse(part)?);
        }
        if items.is_empty() {
            return Err(SaasError::invalid(
                "scope",
                "name at least one kind of data",
            ));
        }
        items.sort();
        items.dedup();
        if items.contains(&HeldData::All) {
            items = vec![HeldData::All];
        }
        Ok(HoldScope(items))
    }

    pub fn as_text(&self) -> String {
        self.0
            .iter()
            .map(|d| d.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Whether deleting `target` would remove held data. Deleting the whole tenant
    /// (`All`: a release or a close) removes held data whatever the scope.
    pub fn blocks(&self, target: HeldData) -> bool {
        target == HeldData::All || self.0.contains(&HeldData::All) || self.0.contains(&target)
    }
}

/// A hold as staff `legal` place it (SVC-192).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldTerms {
    pub authority_reference: String,
    pub scope: HoldScope,
    pub starts_at: Timestamp,
    pub review_on: Date,
    /// SVC-225: the law forbids telling the tenant.
    pub notice_forbidden: bool,
}

/// Checks a hold before it is stored: a reference, a scope, and a review date after the
/// day the hold starts (in `billing_tz`).
pub fn hold_terms(
    authority_reference: &str,
    scope: &str,
    starts_at: Timestamp,
    review_on: Date,
    notice_forbidden: bool,
    billing_tz: &TimeZone,
) -> Result<HoldTerms> {
    let authority_reference = required("authority-reference", authority_reference)?;
    let scope = HoldScope::parse(scope)?;
    let start_day = date_of(starts_at, billing_tz);
    if review_on <= start_day {
        return Err(SaasError::invalid(
            "review",
            format!("the review date {review_on} must come after the hold starts ({start_day})"),
        ));
    }
    Ok(HoldTerms {
        authority_reference,
        scope,
        starts_at,
        review_on,
        notice_forbidden,
    })
}

/// A stored hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    pub hold_id: i64,
    pub account_id: i64,
    pub terms: HoldTerms,
    pub lifted_at: Option<Timestamp>,
}

impl Hold {
    /// In force at `now`: started and not lifted.
    pub fn active(&self, now: Timestamp) -> bool {
        self.terms.starts_at <= now && self.lifted_at.is_none_or(|l| now < l)
    }
}

/// The held data a tenant's Open API deletion removes, or `None` when the path deletes
/// nothing the tenant owns as data (revoking keys and grants removes no data).
pub fn deletion_target(path: &str) -> Option<HeldData> {
    match path {
        "/incident/bulk-delete" => Some(HeldData::Incidents),
        "/member/delete" => Some(HeldData::Members),
        "/app-key/delete" | "/account/access-grant/revoke" => None,
        p if p.ends_with("/delete") => Some(HeldData::Configuration),
        _ => None,
    }
}

/// SVC-192: a hold blocks the tenant deleting held data. Refused with the holds' ids (the
/// tenant is not told more: a hold it may not know of still blocks, SVC-225).
pub fn deletion_allowed(holds: &[Hold], target: HeldData, now: Timestamp) -> Result<()> {
    let blocking: Vec<String> = holds
        .iter()
        .filter(|h| h.active(now) && h.terms.scope.blocks(target))
        .map(|h| h.hold_id.to_string())
        .collect();
    if blocking.is_empty() {
        return Ok(());
    }
    Err(SaasError::refused(
        "SVC-192",
        format!(
            "this data is under a legal hold and cannot be deleted until the hold is lifted ({} {})",
            if blocking.len() == 1 { "hold" } else { "holds" },
            blocking.join(", ")
        ),
    ))
}

/// SVC-187/192: any hold in force pauses the purge, whatever its scope (the purge deletes
/// everything).
pub fn purge_paused(holds: &[Hold], now: Timestamp) -> bool {
    holds.iter().any(|h| h.active(now))
}

/// When the purge of a tenant runs after a hold is lifted (SVC-192).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterLift {
    /// The tenant has no purge date (service in force, or already purged).
    NoPurge,
    /// Another hold still pauses it.
    StillHeld,
    /// The purge date has passed: the next purge run takes it at once.
    Now,
    /// The purge date is still ahead: it runs then.
    At(Timestamp),
}

pub fn after_lift(
    purge_at: Option<Timestamp>,
    other_holds_active: bool,
    now: Timestamp,
) -> AfterLift {
    match purge_at {
        None => AfterLift::NoPurge,
        Some(_) if other_holds_active => AfterLift::StillHeld,
        Some(p) if p <= now => AfterLift::Now,
        Some(p) => AfterLift::At(p),
    }
}

/// The owner's notice of a hold placed or lifted, `None` when the law forbids telling the
/// tenant (SVC-225).
pub fn hold_notice(hold_id: i64, terms: &HoldTerms, lifted: bool) -> Option<(String, String)> {
    if terms.notice_forbidden {
        return None;
    }
    let scope = terms.scope.as_text();
    Some(if lifted {
        (
            format!("Legal hold {hold_id} on your organisation's data was lifted"),
            format!(
                "The legal hold {hold_id} (authority reference {}, scope {scope}) was lifted.\n\
                 Deleting the data it covered is possible again. If your organisation's purge \
                 date has passed, the purge now runs.\n",
                terms.authority_reference
            ),
        )
    } else {
        (
            format!("Legal hold {hold_id} placed on your organisation's data"),
            format!(
                "A legal hold was placed on your organisation's data under authority reference \
                 {}.\nScope: {scope}\nIn force from: {}\nNext review: {}\n\nWhile it is in force \
                 the data it covers cannot be deleted, and no purge runs. Reading and exporting \
                 are not affected.\n",
                terms.authority_reference,
                terms.starts_at.strftime("%Y-%m-%d %H:%M UTC"),
                terms.review_on
            ),
        )
    })
}

/// Kinds of customer data (SVC-180) a security incident may affect.
pub const DATA_TYPES: &[&str] = &[
    "events",
    "incidents",
    "timelines",
    "comments",
    "attachments",
    "configuration",
    "member_profiles",
    "notifications",
    "audit_log",
    "analytics",
    "exports",
];

/// A data-security incident as staff record it (SVC-194).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncidentReport {
    pub accounts: Vec<i64>,
    pub data_types: Vec<String>,
    pub window_start: Timestamp,
    pub window_end: Timestamp,
    pub impact: String,
    pub remediation: String,
}

/// Checks an incident record: tenants (distinct, at least one), known data types, a time
/// window that has started by `now` and ends after it starts, the likely impact and the
/// remediation.
pub fn incident_report(
    accounts: &[i64],
    data_types: &[String],
    window_start: Timestamp,
    window_end: Timestamp,
    impact: &str,
    remediation: &str,
    now: Timestamp,
) -> Result<IncidentReport> {
    let mut ids = accounts.to_vec();
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() {
        return Err(SaasError::invalid(
            "accounts",
            "name at least one affected tenant",
        ));
    }
    if ids.len() > MAX_INCIDENT_TENANTS {
        return Err(SaasError::invalid(
            "accounts",
            format!("at most {MAX_INCIDENT_TENANTS} tenants per record"),
        ));
    }
    if let Some(bad) = ids.iter().find(|id| **id <= 0) {
        return Err(SaasError::invalid(
            "accounts",
            format!("{bad} is not an account id"),
        ));
    }
    let mut types: Vec<String> = data_types
        .iter()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .collect();
    types.sort();
    types.dedup();
    if types.is_empty() {
        return Err(SaasError::invalid(
            "data-types",
            "name at least one kind of data",
        ));
    }
    if let Some(bad) = types.iter().find(|t| !DATA_TYPES.contains(&t.as_str())) {
        return Err(SaasError::invalid(
            "data-types",
            format!(
                "{bad:?} is not a kind of data; use {}",
                DATA_TYPES.join(", ")
            ),
        ));
    }
    if window_end <= window_start {
        return Err(SaasError::invalid(
            "to",
            "the window must end after it starts",
        ));
    }
    if window_start > now {
        return Err(SaasError::invalid(
            "from",
            "the window cannot start in the future",
        ));
    }
    Ok(IncidentReport {
        accounts: ids,
        data_types: types,
        window_start,
        window_end,
        impact: required("impact", impact)?,
        remediation: required("remediation", remediation)?,
    })
}

/// The critical notice each affected owner gets (SVC-194, SVC-316). It names this tenant's
/// part only: never the other tenants the incident affected (SVC-181).
pub fn incident_notice(incident_id: i64, r: &IncidentReport) -> (String, String) {
    let utc = |t: Timestamp| t.strftime("%Y-%m-%d %H:%M UTC").to_string();
    (
        format!("Data-security incident affecting your organisation (incident {incident_id})"),
        format!(
            "The operator recorded a data-security incident that affected your organisation's \
             data.\n\nIncident: {incident_id}\nData affected: {}\nTime window: {} to {}\n\
             Likely impact: {}\nRemediation: {}\n\nContact support with the incident number for \
             any question.\n",
            r.data_types.join(", "),
            utc(r.window_start),
            utc(r.window_end),
            r.impact,
            r.remediation
        ),
    )
}

/// SVC-010 *(decision)*: how long the owner's confirmation code of a closure asked for by
/// e-mail stays valid, and how many wrong codes void it.
pub const CLOSURE_CODE_HOURS: i64 = 72;
pub const CLOSURE_CODE_TRIES: i64 = 5;

/// SVC-010: a closure asked for by e-mail is acted on only for a ticket of category
/// `closure`, filed under the tenant, sent from the owner's contact e-mail address.
pub fn closure_ticket(
    category: &str,
    ticket_account: i64,
    account_id: i64,
    sender: &str,
    owner_email: &str,
) -> Result<()> {
    if category != "closure" {
        return Err(SaasError::refused(
            "SVC-010",
            format!("the ticket's category is {category:?}; triage it as closure first"),
        ));
    }
    if ticket_account != account_id {
        return Err(SaasError::refused(
            "SVC-010",
            "the ticket is not filed under this tenant",
        ));
    }
    if owner_email.is_empty() || !sender.trim().eq_ignore_ascii_case(owner_email.trim()) {
        return Err(SaasError::refused(
            "SVC-010",
            "only a mail from the owner's contact e-mail address can ask for the closure",
        ));
    }
    Ok(())
}

/// Why a confirmation code is not accepted (SVC-010).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeCheck {
    Accepted,
    Wrong,
    Expired,
    TooManyTries,
    AlreadyConfirmed,
}

/// SVC-010: checks a code against the stored request. `attempts` counts the tries before
/// this one.
pub fn closure_code(
    matches: bool,
    expires_at: Timestamp,
    attempts: i64,
    confirmed: bool,
    now: Timestamp,
) -> CodeCheck {
    if confirmed {
        CodeCheck::AlreadyConfirmed
    } else if attempts >= CLOSURE_CODE_TRIES {
        CodeCheck::TooManyTries
    } else if now >= expires_at {
        CodeCheck::Expired
    } else if matches {
        CodeCheck::Accepted
    } else {
        CodeCheck::Wrong
    }
}

/// The owner's e-mail carrying the confirmation code of a closure (SVC-010).
pub fn closure_notice(
    ticket_id: i64,
    code: &str,
    keep_buffer: bool,
    expires_at: Timestamp,
) -> (String, String) {
    let after = if keep_buffer {
        "kept read-only for the buffer period and then purged"
    } else {
        "purged once the undo window has passed"
    };
    (
        format!("Confirm closing your organisation (ticket {ticket_id})"),
        format!(
            "Support received a request to close your organisation (ticket {ticket_id}).\n\
             To confirm it, reply to the ticket with this code: {code}\n\
             The code is valid until {}. Closing ends the service at once; the data is {after}. \
             Debts remain owed.\nIf you did not ask for this, do not send the code.\n",
            expires_at.strftime("%Y-%m-%d %H:%M UTC")
        ),
    )
}

fn required(field: &'static str, value: &str) -> Result<String> {
    let v = value.trim();
    if v.is_empty() {
        return Err(SaasError::invalid(field, "is required"));
    }
    if v.chars().count() > MAX_TEXT_CHARS {
        return Err(SaasError::invalid(
            field,
            format!("at most {MAX_TEXT_CHARS} characters"),
        ));
    }
    Ok(v.to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use jiff::civil::date;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn hold(id: i64, scope: &str, start: &str, lifted: Option<&str>) -> Hold {
        Hold {
            hold_id: id,
            account_id: 7,
            terms: hold_terms(
                "Court X 12/2025",
                scope,
                t(start),
                date(2030, 1, 1),
                false,
                &TimeZone::UTC,
            )
            .unwrap(),
            lifted_at: lifted.map(t),
        }
    }

    #[test]
    fn a_hold_needs_a_reference_a_scope_and_a_later_review_date() {
        // spec: SVC-192 (authority reference, scope, start, review date)
        let start = t("2025-05-01T10:00:00Z");
        let tz = TimeZone::UTC;
        assert!(hold_terms(" ", "all", start, date(2025, 6, 1), false, &tz).is_err());
        assert!(hold_terms("REF", "", start, date(2025, 6, 1), false, &tz).is_err());
        assert!(hold_terms("REF", "backups", start, date(2025, 6, 1), false, &tz).is_err());
        assert!(hold_terms("REF", "all", start, date(2025, 5, 1), false, &tz).is_err());
        let h = hold_terms(
            "REF",
            "members, incidents,all",
            start,
            date(2025, 6, 1),
            false,
            &tz,
        )
        .unwrap();
        assert_eq!(h.scope.as_text(), "all");
        let h = hold_terms(
            "REF",
            "members,incidents,members",
            start,
            date(2025, 6, 1),
            true,
            &tz,
        )
        .unwrap();
        assert_eq!(h.scope.as_text(), "incidents,members");
    }

    #[test]
    fn a_hold_blocks_deleting_what_it_holds_while_in_force() {
        // spec: SVC-192 (blocks tenant deletion of the held data)
        let holds = vec![hold(1, "incidents", "2025-05-01T00:00:00Z", None)];
        let now = t("2025-05-02T00:00:00Z");
        let incidents = deletion_target("/incident/bulk-delete").unwrap();
        let err = deletion_allowed(&holds, incidents, now).unwrap_err();
        assert!(err.to_string().contains("SVC-192"), "{err}");
        assert!(err.to_string().contains("hold 1"), "{err}");
        // Other data is not held; releasing the whole tenant is.
        let channel = deletion_target("/channel/delete").unwrap();
        assert!(deletion_allowed(&holds, channel, now).is_ok());
        assert!(deletion_allowed(&holds, HeldData::All, now).is_err());
        // Revoking keys deletes no data.
        assert_eq!(deletion_target("/app-key/delete"), None);
        assert_eq!(deletion_target("/incident/list"), None);
        // Not yet started, or lifted: no block.
        assert!(deletion_allowed(&holds, incidents, t("2025-04-30T00:00:00Z")).is_ok());
        let lifted = vec![hold(
            1,
            "all",
            "2025-05-01T00:00:00Z",
            Some("2025-05-03T00:00:00Z"),
        )];
        assert!(deletion_allowed(&lifted, channel, now).is_err());
        assert!(deletion_allowed(&lifted, channel, t("2025-05-03T00:00:00Z")).is_ok());
    }

    #[test]
    fn a_hold_pauses_the_purge_and_a_lift_past_the_date_purges_at_once() {
        // spec: SVC-192 (pauses the purge; lifted after the purge date → the purge runs at once)
        // spec: SVC-187 (only a legal hold pauses it)
        let holds = vec![hold(1, "members", "2025-05-01T00:00:00Z", None)];
        assert!(purge_paused(&holds, t("2025-06-01T00:00:00Z")));
        assert!(!purge_paused(&holds, t("2025-04-01T00:00:00Z")));
        let purge = t("2025-05-15T00:00:00Z");
        let now = t("2025-06-01T00:00:00Z");
        assert_eq!(after_lift(Some(purge), false, now), AfterLift::Now);
        assert_eq!(after_lift(Some(purge), true, now), AfterLift::StillHeld);
        assert_eq!(
            after_lift(Some(purge), false, t("2025-05-01T00:00:00Z")),
            AfterLift::At(purge)
        );
        assert_eq!(after_lift(None, false, now), AfterLift::NoPurge);
    }

    #[test]
    fn the_tenant_is_told_of_a_hold_unless_the_law_forbids_it() {
        // spec: SVC-192, SVC-225
        let h = hold(4, "incidents", "2025-05-01T00:00:00Z", None);
        let (subject, text) = hold_notice(4, &h.terms, false).unwrap();
        assert!(subject.contains("Legal hold 4"), "{subject}");
        assert!(
            text.contains("Court X 12/2025") && text.contains("Scope: incidents"),
            "{text}"
        );
        assert!(text.contains("Next review: 2030-01-01"), "{text}");
        let (_, lifted) = hold_notice(4, &h.terms, true).unwrap();
        assert!(lifted.contains("was lifted"), "{lifted}");
        let mut secret = h.terms.clone();
        secret.notice_forbidden = true;
        assert!(hold_notice(4, &secret, false).is_none());
        assert!(hold_notice(4, &secret, true).is_none());
    }

    #[test]
    fn a_closure_by_mail_needs_the_owners_address_and_a_fresh_code() {
        // spec: SVC-010 (email from the owner's contact address, confirmed by a code)
        assert!(closure_ticket("closure", 7, 7, "Owner@Example.com", "owner@example.com").is_ok());
        assert!(closure_ticket("billing", 7, 7, "owner@example.com", "owner@example.com").is_err());
        assert!(closure_ticket("closure", 8, 7, "owner@example.com", "owner@example.com").is_err());
        assert!(closure_ticket("closure", 7, 7, "admin@example.com", "owner@example.com").is_err());
        let exp = t("2025-05-04T00:00:00Z");
        let now = t("2025-05-02T00:00:00Z");
        assert_eq!(closure_code(true, exp, 0, false, now), CodeCheck::Accepted);
        assert_eq!(closure_code(false, exp, 0, false, now), CodeCheck::Wrong);
        assert_eq!(
            closure_code(true, exp, CLOSURE_CODE_TRIES, false, now),
            CodeCheck::TooManyTries
        );
        assert_eq!(closure_code(true, exp, 0, false, exp), CodeCheck::Expired);
        assert_eq!(
            closure_code(true, exp, 0, true, now),
            CodeCheck::AlreadyConfirmed
        );
        let (subject, text) = closure_notice(41, "12345678", false, exp);
        assert!(subject.contains("ticket 41"), "{subject}");
        assert!(
            text.contains("12345678") && text.contains("2025-05-04 00:00 UTC"),
            "{text}"
        );
        assert!(text.contains("undo window"), "{text}");
    }

    #[test]
    fn an_incident_record_is_complete_and_its_notice_names_no_other_tenant() {
        // spec: SVC-194 (tenants, data types, time window, likely impact, remediation)
        let now = t("2025-05-10T00:00:00Z");
        let from = t("2025-05-01T00:00:00Z");
        let to = t("2025-05-02T00:00:00Z");
        let types = vec!["incidents".to_string(), "attachments".to_string()];
        assert!(incident_report(&[], &types, from, to, "x", "y", now).is_err());
        assert!(incident_report(&[3], &[], from, to, "x", "y", now).is_err());
        assert!(incident_report(&[3], &["backups".into()], from, to, "x", "y", now).is_err());
        assert!(incident_report(&[3], &types, to, from, "x", "y", now).is_err());
        assert!(incident_report(&[3], &types, from, to, " ", "y", now).is_err());
        assert!(incident_report(&[3], &types, from, to, "x", "", now).is_err());
        assert!(
            incident_report(
                &[3],
                &types,
                t("2025-06-01T00:00:00Z"),
                t("2025-06-02T00:00:00Z"),
                "x",
                "y",
                now
            )
            .is_err()
        );
        let r = incident_report(
            &[9, 3, 9],
            &types,
            from,
            to,
            "titles read",
            "keys rotated",
            now,
        )
        .unwrap();
        assert_eq!(r.accounts, vec![3, 9]);
        assert_eq!(r.data_types, vec!["attachments", "incidents"]);
        let (subject, text) = incident_notice(12, &r);
        assert!(subject.contains("incident 12"), "{subject}");
        assert!(
            text.contains("Data affected: attachments, incidents"),
            "{text}"
        );
        assert!(
            text.contains("2025-05-01 00:00 UTC to 2025-05-02 00:00 UTC"),
            "{text}"
        );
        assert!(
            text.contains("Likely impact: titles read\nRemediation: keys rotated"),
            "{text}"
        );
        assert!(!text.contains('9'), "names no other tenant: {text}");
    }
}
