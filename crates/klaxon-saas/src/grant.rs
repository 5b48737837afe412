//! Operator access to a tenant's data (§15, SVC-220 … SVC-226): staff roles, the access
//! grant a tenant gives, and the one check every staff read or write goes through.
//!
//! Default deny (SVC-220): staff reach tenant data only through [`check`], and `check` says
//! yes only for an unrevoked grant, inside its window, naming this staff member (or the
//! support team they belong to), whose scope covers the action and whose channel filter
//! covers the object. Everything here is pure; the caller passes the time and the stored
//! grant in.

use jiff::{SignedDuration, Timestamp};

use crate::error::{Result, SaasError};
use crate::params::Params;

/// Roles of the operator's staff (§0.2). Only the two that act on tenants through this
/// module exist as identities so far: `support` works under grants, `legal` keeps the
/// lawful-request register (SVC-224).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StaffRole {
    Support,
    Legal,
}

impl StaffRole {
    pub fn parse(text: &str) -> Result<StaffRole> {
        match text {
            "support" => Ok(StaffRole::Support),
            "legal" => Ok(StaffRole::Legal),
            other => Err(SaasError::invalid(
                "role",
                format!("{other:?} is not a staff role; use support or legal"),
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            StaffRole::Support => "support",
            StaffRole::Legal => "legal",
        }
    }
}

/// Write operations a tenant may name in a grant (SVC-221 "named write operations"). Each
/// is one Open API action the staff member may take on the tenant's behalf.
pub const WRITE_OPERATIONS: &[&str] = &[
    "incident_ack",
    "incident_resolve",
    "channel_enable",
    "channel_disable",
];

/// What a grant lets staff do (SVC-221).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Configuration: channels, integrations, rules.
    ReadConfig,
    /// Incidents and their alerts.
    ReadIncidents,
    /// Both of the above.
    ReadAll,
    /// One named write operation of [`WRITE_OPERATIONS`].
    Write(String),
}

impl Scope {
    pub fn parse(text: &str) -> Result<Scope> {
        match text {
            "read_config" => Ok(Scope::ReadConfig),
            "read_incidents" => Ok(Scope::ReadIncidents),
            "read_all" => Ok(Scope::ReadAll),
            other => match other.strip_prefix("write:") {
                Some(op) if WRITE_OPERATIONS.contains(&op) => Ok(Scope::Write(op.to_string())),
                _ => Err(SaasError::invalid(
                    "scope",
                    format!(
                        "{other:?} is not a scope; use read_config, read_incidents, read_all or write:<{}>",
                        WRITE_OPERATIONS.join("|")
                    ),
                )),
            },
        }
    }

    pub fn as_text(&self) -> String {
        match self {
            Scope::ReadConfig => "read_config".into(),
            Scope::ReadIncidents => "read_incidents".into(),
            Scope::ReadAll => "read_all".into(),
            Scope::Write(op) => format!("write:{op}"),
        }
    }

    /// Whether the scope covers `need`.
    pub fn covers(&self, need: &Need) -> bool {
        match (self, need) {
            (Scope::ReadAll, Need::ReadConfig | Need::ReadIncidents) => true,
            (Scope::ReadConfig, Need::ReadConfig) => true,
            (Scope::ReadIncidents, Need::ReadIncidents) => true,
            (Scope::Write(granted), Need::Write(op)) => granted == op,
            _ => false,
        }
    }
}

/// What one staff action needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Need {
    ReadConfig,
    ReadIncidents,
    Write(String),
}

impl Need {
    pub fn as_text(&self) -> String {
        match self {
            Need::ReadConfig => "read_config".into(),
            Need::ReadIncidents => "read_incidents".into(),
            Need::Write(op) => format!("write:{op}"),
        }
    }
}

/// Who may use a grant (SVC-221): one named staff member or the whole support team.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grantee {
    Staff(i64),
    SupportTeam,
}

/// Limits on the free-text fields of a grant, so one grant cannot carry a document.
pub const MAX_PURPOSE_CHARS: usize = 500;
pub const MAX_TICKET_CHARS: usize = 100;
/// At most this many channels in a resource filter.
pub const MAX_FILTER_CHANNELS: usize = 100;

/// A grant as requested by the owner or an Admin, before it is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantRequest {
    pub grantee: Grantee,
    pub scope: Scope,
    /// Empty: every channel.
    pub channel_ids: Vec<i64>,
    pub purpose: String,
    pub ticket_id: String,
    pub start: Option<Timestamp>,
    pub end: Option<Timestamp>,
}

/// A grant's validated terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantTerms {
    pub grantee: Grantee,
    pub scope: Scope,
    pub channel_ids: Vec<i64>,
    pub purpose: String,
    pub ticket_id: String,
    pub starts_at: Timestamp,
    pub ends_at: Timestamp,
}

fn days(n: i64) -> SignedDuration {
    SignedDuration::from_hours(n.saturating_mul(24))
}

/// SVC-221: validates a request at `now`. The window starts now unless a later start is
/// given (an earlier one is taken as now: access is never granted for the past); it ends
/// `access_grant_default_days` later unless an end is given, which must come after the start
/// and at most `access_grant_max_days` after it (`params` carries a contract's override).
pub fn terms(req: GrantRequest, now: Timestamp, params: &Params) -> Result<GrantTerms> {
    let purpose = req.purpose.trim().to_string();
    if purpose.is_empty() {
        return Err(SaasError::invalid(
            "purpose",
            "is required: say why staff need the access",
        ));
    }
    if purpose.chars().count() > MAX_PURPOSE_CHARS {
        return Err(SaasError::invalid(
            "purpose",
            format!("at most {MAX_PURPOSE_CHARS} characters"),
        ));
    }
    let ticket_id = req.ticket_id.trim().to_string();
    if ticket_id.chars().count() > MAX_TICKET_CHARS {
        return Err(SaasError::invalid(
            "ticket_id",
            format!("at most {MAX_TICKET_CHARS} characters"),
        ));
    }
    if let Grantee::Staff(id) = req.grantee
        && id <= 0
    {
        return Err(SaasError::invalid(
            "grantee_staff_id",
            "must be a staff id, or absent for the support team",
        ));
    }
    let mut channel_ids = req.channel_ids;
    if let Some(bad) = channel_ids.iter().find(|c| **c <= 0) {
        return Err(SaasError::invalid(
            "channel_ids",
            format!("{bad} is not a channel id"),
        ));
    }
    channel_ids.sort_unstable();
    channel_ids.dedup();
    if channel_ids.len() > MAX_FILTER_CHANNELS {
        return Err(SaasError::invalid(
            "channel_ids",
            format!("at most {MAX_FILTER_CHANNELS} channels"),
        ));
    }
    let starts_at = match req.start {
        Some(s) if s > now => s,
        _ => now,
    };
    let ends_at = match req.end {
        Some(e) => e,
        None => starts_at.checked_add(days(params.access_grant_default_days))?,
    };
    if ends_at <= starts_at {
        return Err(SaasError::invalid(
            "end_time",
            "must be after the start of the grant",
        ));
    }
    let longest = starts_at.checked_add(days(params.access_grant_max_days))?;
    if ends_at > longest {
        return Err(SaasError::invalid(
            "end_time",
            format!(
                "a grant lasts at most {} days from its start",
                params.access_grant_max_days
            ),
        ));
    }
    Ok(GrantTerms {
        grantee: req.grantee,
        scope: req.scope,
        channel_ids,
        purpose,
        ticket_id,
        starts_at,
        ends_at,
    })
}

/// A stored grant as the check sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub grant_id: i64,
    pub account_id: i64,
    pub terms: GrantTerms,
    pub revoked_at: Option<Timestamp>,
}

/// Where a grant stands at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Scheduled,
    Active,
    Expired,
    Revoked,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Scheduled => "scheduled",
            Status::Active => "active",
            Status::Expired => "expired",
            Status::Revoked => "revoked",
        }
    }
}

impl Grant {
    /// Revocation wins over everything; expiry needs no job (SVC-221 "expires
    /// automatically"): a grant past its end is expired whenever it is looked at.
    pub fn status(&self, now: Timestamp) -> Status {
        if self.revoked_at.is_some_and(|r| r <= now) {
            Status::Revoked
        } else if now >= self.terms.ends_at {
            Status::Expired
        } else if now < self.terms.starts_at {
            Status::Scheduled
        } else {
            Status::Active
        }
    }

    /// Whether `staff` is the grant's grantee (SVC-221).
    pub fn names(&self, staff_id: i64, role: StaffRole) -> bool {
        match self.terms.grantee {
            Grantee::Staff(id) => id == staff_id,
            Grantee::SupportTeam => role == StaffRole::Support,
        }
    }
}

/// A staff member as the check sees them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Staff {
    pub staff_id: i64,
    pub role: StaffRole,
}

/// SVC-220/221: may `staff` do `need` on `account_id` under `grant` at `now`, on an object
/// of `channel` (`None`: the action names no single channel, e.g. a list the caller
/// filters by the grant's channels)? The refusal says why, in words for the staff member.
pub fn check(
    grant: &Grant,
    staff: Staff,
    account_id: i64,
    need: &Need,
    channel: Option<i64>,
    now: Timestamp,
) -> std::result::Result<(), String> {
    if grant.account_id != account_id {
        return Err(format!(
            "grant {} is for another tenant, not account {account_id}",
            grant.grant_id
        ));
    }
    if !grant.names(staff.staff_id, staff.role) {
        return Err(format!(
            "grant {} is not given to staff member {}",
            grant.grant_id, staff.staff_id
        ));
    }
    match grant.status(now) {
        Status::Active => {}
        Status::Revoked => return Err(format!("grant {} was revoked", grant.grant_id)),
        Status::Expired => {
            return Err(format!(
                "grant {} expired at {}",
                grant.grant_id, grant.terms.ends_at
            ));
        }
        Status::Scheduled => {
            return Err(format!(
                "grant {} starts at {}",
                grant.grant_id, grant.terms.starts_at
            ));
        }
    }
    if !grant.terms.scope.covers(need) {
        return Err(format!(
            "grant {} has scope {}, which does not cover {}",
            grant.grant_id,
            grant.terms.scope.as_text(),
            need.as_text()
        ));
    }
    if let Some(ch) = channel
        && !grant.terms.channel_ids.is_empty()
        && !grant.terms.channel_ids.contains(&ch)
    {
        return Err(format!(
            "grant {} does not cover channel {ch}",
            grant.grant_id
        ));
    }
    Ok(())
}

/// What happened to a grant that its tenant's owner and admins are told of (SVC-221, SVC-316
/// category `access_grant`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantEvent {
    Created,
    Revoked,
    Expired,
}

impl GrantEvent {
    /// The notice template id.
    pub fn template_id(self) -> &'static str {
        match self {
            GrantEvent::Created => "access_grant_created",
            GrantEvent::Revoked => "access_grant_revoked",
            GrantEvent::Expired => "access_grant_expired",
        }
    }
}

/// The subject and text of the notice of `event` for `terms` of grant `grant_id`, at `at`.
/// Times are given in UTC with the zone named, so the text reads the same to every
/// recipient whatever their own zone.
pub fn notice_text(
    event: GrantEvent,
    grant_id: i64,
    terms: &GrantTerms,
    at: Timestamp,
) -> (String, String) {
    let who = match terms.grantee {
        Grantee::Staff(id) => format!("staff member {id}"),
        Grantee::SupportTeam => "the support team".to_string(),
    };
    let channels = if terms.channel_ids.is_empty() {
        "every channel".to_string()
    } else {
        let ids: Vec<String> = terms.channel_ids.iter().map(i64::to_string).collect();
        format!("channels {}", ids.join(", "))
    };
    let utc = |t: Timestamp| t.strftime("%Y-%m-%d %H:%M UTC").to_string();
    let (subject, opening) = match event {
        GrantEvent::Created => (
            format!("Operator access granted (grant {grant_id})"),
            format!(
                "Your organisation granted {who} access to its data, from {} until {}.",
                utc(terms.starts_at),
                utc(terms.ends_at)
            ),
        ),
        GrantEvent::Revoked => (
            format!("Operator access revoked (grant {grant_id})"),
            format!(
                "Grant {grant_id} was revoked at {}; {who} can no longer use it.",
                utc(at)
            ),
        ),
        GrantEvent::Expired => (
            format!("Operator access ended (grant {grant_id})"),
            format!(
                "Grant {grant_id} expired at {}; {who} can no longer use it.",
                utc(terms.ends_at)
            ),
        ),
    };
    let mut content = format!(
        "{opening}\n\nScope: {}\nResources: {channels}\nPurpose: {}\n",
        terms.scope.as_text(),
        terms.purpose
    );
    if !terms.ticket_id.is_empty() {
        content.push_str(&format!("Ticket: {}\n", terms.ticket_id));
    }
    content.push_str(
        "\nEvery use of the grant is in your audit log. The owner or an admin can revoke it at any time.\n",
    );
    (subject, content)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn req(start: Option<&str>, end: Option<&str>) -> GrantRequest {
        GrantRequest {
            grantee: Grantee::SupportTeam,
            scope: Scope::ReadAll,
            channel_ids: vec![],
            purpose: "ticket about missing calls".into(),
            ticket_id: "T-1".into(),
            start: start.map(at),
            end: end.map(at),
        }
    }

    fn grant(t: GrantTerms) -> Grant {
        Grant {
            grant_id: 9,
            account_id: 1,
            terms: t,
            revoked_at: None,
        }
    }

    #[test]
    fn default_end_is_seven_days_and_max_thirty() {
        // spec: SVC-221 (end default 7 days, max 30)
        let p = Params::cloud_defaults();
        let now = at("2025-06-02T09:00:00Z");
        let t = terms(req(None, None), now, &p).unwrap();
        assert_eq!(t.starts_at, now);
        assert_eq!(t.ends_at, at("2025-06-09T09:00:00Z"));
        let t = terms(req(None, Some("2025-07-02T09:00:00Z")), now, &p).unwrap();
        assert_eq!(t.ends_at, at("2025-07-02T09:00:00Z"));
        let e = terms(req(None, Some("2025-07-02T09:00:01Z")), now, &p).unwrap_err();
        assert!(e.to_string().contains("end_time"), "{e}");
        // A later start moves the limit with it.
        let t = terms(
            req(Some("2025-06-10T00:00:00Z"), Some("2025-07-10T00:00:00Z")),
            now,
            &p,
        )
        .unwrap();
        assert_eq!(t.starts_at, at("2025-06-10T00:00:00Z"));
        // An earlier start is now: never access in the past.
        let t = terms(req(Some("2025-01-01T00:00:00Z"), None), now, &p).unwrap();
        assert_eq!(t.starts_at, now);
    }

    #[test]
    fn a_contract_may_lengthen_the_maximum() {
        // spec: SVC-012 (access_grant_max override)
        // spec: SVC-221
        let p = crate::contract::apply(
            &Params::cloud_defaults(),
            &[crate::contract::Override::AccessGrantMaxDays(60)],
        )
        .unwrap();
        let now = at("2025-06-02T09:00:00Z");
        let t = terms(req(None, Some("2025-07-30T09:00:00Z")), now, &p).unwrap();
        assert_eq!(t.ends_at, at("2025-07-30T09:00:00Z"));
    }

    #[test]
    fn bad_requests_name_the_field() {
        // spec: SVC-221
        let p = Params::cloud_defaults();
        let now = at("2025-06-02T09:00:00Z");
        let mut r = req(None, None);
        r.purpose = "  ".into();
        assert!(
            terms(r, now, &p)
                .unwrap_err()
                .to_string()
                .contains("purpose")
        );
        let mut r = req(None, None);
        r.channel_ids = vec![3, -1];
        assert!(
            terms(r, now, &p)
                .unwrap_err()
                .to_string()
                .contains("channel_ids")
        );
        let mut r = req(None, None);
        r.channel_ids = (1..=101).collect();
        assert!(
            terms(r, now, &p)
                .unwrap_err()
                .to_string()
                .contains("channel_ids")
        );
        let e = terms(req(None, Some("2025-06-02T09:00:00Z")), now, &p).unwrap_err();
        assert!(e.to_string().contains("end_time"), "{e}");
        assert!(
            Scope::parse("read_everything")
                .unwrap_err()
                .to_string()
                .contains("scope")
        );
        assert!(Scope::parse("write:delete_account").is_err());
        assert_eq!(
            Scope::parse("write:incident_ack").unwrap(),
            Scope::Write("incident_ack".into())
        );
        assert!(StaffRole::parse("finance").is_err());
    }

    #[test]
    fn scopes_cover_what_they_name() {
        // spec: SVC-221 (scopes)
        assert!(Scope::ReadAll.covers(&Need::ReadConfig));
        assert!(Scope::ReadAll.covers(&Need::ReadIncidents));
        assert!(!Scope::ReadAll.covers(&Need::Write("incident_ack".into())));
        assert!(Scope::ReadConfig.covers(&Need::ReadConfig));
        assert!(!Scope::ReadConfig.covers(&Need::ReadIncidents));
        assert!(!Scope::ReadIncidents.covers(&Need::ReadConfig));
        assert!(Scope::Write("incident_ack".into()).covers(&Need::Write("incident_ack".into())));
        assert!(!Scope::Write("incident_ack".into()).covers(&Need::ReadIncidents));
    }

    #[test]
    fn the_check_refuses_outside_grantee_window_scope_and_filter() {
        // spec: SVC-220 (default deny)
        // spec: SVC-221 (scoped, time-limited, revocable)
        let p = Params::cloud_defaults();
        let now = at("2025-06-02T09:00:00Z");
        let mut r = req(Some("2025-06-03T00:00:00Z"), Some("2025-06-05T00:00:00Z"));
        r.scope = Scope::ReadConfig;
        r.channel_ids = vec![7];
        r.grantee = Grantee::Staff(4);
        let mut g = grant(terms(r, now, &p).unwrap());
        let ann = Staff {
            staff_id: 4,
            role: StaffRole::Support,
        };
        let ben = Staff {
            staff_id: 5,
            role: StaffRole::Support,
        };
        let inside = at("2025-06-04T00:00:00Z");
        assert!(check(&g, ann, 1, &Need::ReadConfig, Some(7), inside).is_ok());
        assert!(check(&g, ann, 1, &Need::ReadConfig, None, inside).is_ok());
        let refused = |r: std::result::Result<(), String>, word: &str| {
            let e = r.unwrap_err();
            assert!(e.contains(word), "{e} should mention {word}");
        };
        refused(
            check(&g, ben, 1, &Need::ReadConfig, Some(7), inside),
            "not given",
        );
        refused(
            check(&g, ann, 2, &Need::ReadConfig, Some(7), inside),
            "another tenant",
        );
        refused(check(&g, ann, 1, &Need::ReadConfig, Some(7), now), "starts");
        refused(
            check(
                &g,
                ann,
                1,
                &Need::ReadConfig,
                Some(7),
                at("2025-06-05T00:00:00Z"),
            ),
            "expired",
        );
        refused(
            check(&g, ann, 1, &Need::ReadIncidents, Some(7), inside),
            "does not cover read_incidents",
        );
        refused(
            check(&g, ann, 1, &Need::ReadConfig, Some(8), inside),
            "channel 8",
        );
        g.revoked_at = Some(at("2025-06-03T12:00:00Z"));
        refused(
            check(&g, ann, 1, &Need::ReadConfig, Some(7), inside),
            "revoked",
        );
        assert_eq!(g.status(inside), Status::Revoked);
    }

    #[test]
    fn the_support_team_grant_names_support_staff_only() {
        // spec: SVC-221 (grantee: named staff member or the support team)
        let p = Params::cloud_defaults();
        let now = at("2025-06-02T09:00:00Z");
        let g = grant(terms(req(None, None), now, &p).unwrap());
        assert!(g.names(1, StaffRole::Support));
        assert!(!g.names(1, StaffRole::Legal));
        assert_eq!(g.status(now), Status::Active);
    }

    #[test]
    fn grant_notices_name_the_grantee_window_scope_and_purpose() {
        // spec: SVC-221 — the owner is told of a grant, its revocation and its expiry.
        let terms = GrantTerms {
            grantee: Grantee::SupportTeam,
            scope: Scope::ReadIncidents,
            channel_ids: vec![7, 9],
            purpose: "ticket 42: missing pages".into(),
            ticket_id: "42".into(),
            starts_at: "2025-03-01T08:00:00Z".parse().unwrap(),
            ends_at: "2025-03-08T08:00:00Z".parse().unwrap(),
        };
        let at: Timestamp = "2025-03-02T10:30:00Z".parse().unwrap();
        let (subject, text) = notice_text(GrantEvent::Created, 5, &terms, at);
        assert_eq!(subject, "Operator access granted (grant 5)");
        assert!(text.contains("the support team access to its data, from 2025-03-01 08:00 UTC until 2025-03-08 08:00 UTC"), "{text}");
        assert!(text.contains("Scope: read_incidents\nResources: channels 7, 9\nPurpose: ticket 42: missing pages\nTicket: 42"), "{text}");
        let (subject, text) = notice_text(GrantEvent::Revoked, 5, &terms, at);
        assert_eq!(subject, "Operator access revoked (grant 5)");
        assert!(text.contains("revoked at 2025-03-02 10:30 UTC"), "{text}");
        let (_, text) = notice_text(GrantEvent::Expired, 5, &terms, at);
        assert!(text.contains("expired at 2025-03-08 08:00 UTC"), "{text}");
        assert_eq!(GrantEvent::Expired.template_id(), "access_grant_expired");
    }
}
