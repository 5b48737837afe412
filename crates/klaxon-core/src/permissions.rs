//! The permission policy (response.md §2.29, RSP-520 … RSP-529, RSP-001, RSP-507; OQ-35).
//!
//! Two checks guard every operation (RSP-520):
//! - the **feature permission**: the caller's roles grant a [`Point`] (RSP-521, RSP-522,
//!   RSP-524), checked by [`allowed`] before any Open API handler runs;
//! - the **data permission**: the caller may change this particular object (RSP-527),
//!   decided by [`may_change`] over the object's [`DataScope`].
//!
//! Incident visibility (RSP-526) is [`listed`]: which incidents appear in lists, searches and
//! counts for a caller. Opening an incident by its id only needs `Incidents Read` (the
//! shared-link case).
//!
//! Everything here is pure: the server loads an [`Actor`] once, when it authenticates a
//! request, and every later decision is a function over it.

use std::fmt;

use crate::directory::{ROLE_ADMIN, ROLE_RESPONDER, ROLE_VIEWER};

/// A feature permission point (RSP-521). `Manage` implies the matching `Read`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Point {
    MembersManage,
    RolesManage,
    TeamsManage,
    SsoRead,
    SsoManage,
    AuditRead,
    ApiKeysRead,
    ApiKeysManage,
    ChannelsRead,
    ChannelsManage,
    IncidentsRead,
    IncidentsManage,
    IntegrationsRead,
    IntegrationsManage,
    AnalyticsRead,
    CustomFieldsRead,
    CustomFieldsManage,
    SchedulesRead,
    SchedulesManage,
    CalendarsRead,
    CalendarsManage,
    TemplatesRead,
    TemplatesManage,
    MappingsRead,
    MappingsManage,
}

impl Point {
    /// Every point, in the order of the RSP-521 table.
    pub const ALL: [Point; 25] = [
        Point::MembersManage,
        Point::RolesManage,
        Point::TeamsManage,
        Point::SsoRead,
        Point::SsoManage,
        Point::AuditRead,
        Point::ApiKeysRead,
        Point::ApiKeysManage,
        Point::ChannelsRead,
        Point::ChannelsManage,
        Point::IncidentsRead,
        Point::IncidentsManage,
        Point::IntegrationsRead,
        Point::IntegrationsManage,
        Point::AnalyticsRead,
        Point::CustomFieldsRead,
        Point::CustomFieldsManage,
        Point::SchedulesRead,
        Point::SchedulesManage,
        Point::CalendarsRead,
        Point::CalendarsManage,
        Point::TemplatesRead,
        Point::TemplatesManage,
        Point::MappingsRead,
        Point::MappingsManage,
    ];

    /// The name as the spec writes it (`Incidents Manage`); used in denial messages.
    pub fn name(self) -> &'static str {
        match self {
            Point::MembersManage => "Members Manage",
            Point::RolesManage => "Roles Manage",
            Point::TeamsManage => "Teams Manage",
            Point::SsoRead => "SSO Read",
            Point::SsoManage => "SSO Manage",
            Point::AuditRead => "Audit Read",
            Point::ApiKeysRead => "API Keys Read",
            Point::ApiKeysManage => "API Keys Manage",
            Point::ChannelsRead => "Channels Read",
            Point::ChannelsManage => "Channels Manage",
            Point::IncidentsRead => "Incidents Read",
            Point::IncidentsManage => "Incidents Manage",
            Point::IntegrationsRead => "Integrations Read",
            Point::IntegrationsManage => "Integrations Manage",
            Point::AnalyticsRead => "Analytics Read",
            Point::CustomFieldsRead => "Custom Fields Read",
            Point::CustomFieldsManage => "Custom Fields Manage",
            Point::SchedulesRead => "Schedules Read",
            Point::SchedulesManage => "Schedules Manage",
            Point::CalendarsRead => "Calendars Read",
            Point::CalendarsManage => "Calendars Manage",
            Point::TemplatesRead => "Templates Read",
            Point::TemplatesManage => "Templates Manage",
            Point::MappingsRead => "Mappings Read",
            Point::MappingsManage => "Mappings Manage",
        }
    }

    /// The stable wire key (`incidents_manage`): what custom roles store and the role API
    /// sends and accepts.
    pub fn key(self) -> &'static str {
        match self {
            Point::MembersManage => "members_manage",
            Point::RolesManage => "roles_manage",
            Point::TeamsManage => "teams_manage",
            Point::SsoRead => "sso_read",
            Point::SsoManage => "sso_manage",
            Point::AuditRead => "audit_read",
            Point::ApiKeysRead => "api_keys_read",
            Point::ApiKeysManage => "api_keys_manage",
            Point::ChannelsRead => "channels_read",
            Point::ChannelsManage => "channels_manage",
            Point::IncidentsRead => "incidents_read",
            Point::IncidentsManage => "incidents_manage",
            Point::IntegrationsRead => "integrations_read",
            Point::IntegrationsManage => "integrations_manage",
            Point::AnalyticsRead => "analytics_read",
            Point::CustomFieldsRead => "custom_fields_read",
            Point::CustomFieldsManage => "custom_fields_manage",
            Point::SchedulesRead => "schedules_read",
            Point::SchedulesManage => "schedules_manage",
            Point::CalendarsRead => "calendars_read",
            Point::CalendarsManage => "calendars_manage",
            Point::TemplatesRead => "templates_read",
            Point::TemplatesManage => "templates_manage",
            Point::MappingsRead => "mappings_read",
            Point::MappingsManage => "mappings_manage",
        }
    }

    /// A point from its wire key or its spec name (case-insensitive).
    pub fn parse(s: &str) -> Option<Point> {
        let s = s.trim();
        Point::ALL
            .into_iter()
            .find(|p| p.key().eq_ignore_ascii_case(s) || p.name().eq_ignore_ascii_case(s))
    }

    /// Whether this is a `Read` point.
    pub fn is_read(self) -> bool {
        self.name().ends_with(" Read")
    }

    /// The `Manage` point that implies this `Read` point (RSP-521: "Manage implies Read"),
    /// if there is one. `Audit Read` and `Analytics Read` have none.
    pub fn implied_by(self) -> Option<Point> {
        match self {
            Point::SsoRead => Some(Point::SsoManage),
            Point::ApiKeysRead => Some(Point::ApiKeysManage),
            Point::ChannelsRead => Some(Point::ChannelsManage),
            Point::IncidentsRead => Some(Point::IncidentsManage),
            Point::IntegrationsRead => Some(Point::IntegrationsManage),
            Point::CustomFieldsRead => Some(Point::CustomFieldsManage),
            Point::SchedulesRead => Some(Point::SchedulesManage),
            Point::CalendarsRead => Some(Point::CalendarsManage),
            Point::TemplatesRead => Some(Point::TemplatesManage),
            Point::MappingsRead => Some(Point::MappingsManage),
            _ => None,
        }
    }

    fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

impl fmt::Display for Point {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of points, as a bit set (25 points fit a `u32`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Points(u32);

impl Points {
    pub const NONE: Points = Points(0);

    pub fn of(points: &[Point]) -> Points {
        Points(points.iter().fold(0, |acc, p| acc | p.bit()))
    }

    pub fn all() -> Points {
        Points::of(&Point::ALL)
    }

    /// Held as given, or implied by the matching Manage point.
    pub fn grants(self, point: Point) -> bool {
        self.0 & point.bit() != 0 || point.implied_by().is_some_and(|m| self.0 & m.bit() != 0)
    }

    pub fn union(self, other: Points) -> Points {
        Points(self.0 | other.0)
    }

    /// Whether every point `self` grants (read implications included) is granted by `other`.
    pub fn within(self, other: Points) -> bool {
        Point::ALL
            .into_iter()
            .all(|p| !self.grants(p) || other.grants(p))
    }

    /// The points as stored (not expanded by "Manage implies Read").
    pub fn list(self) -> Vec<Point> {
        Point::ALL
            .into_iter()
            .filter(|p| self.0 & p.bit() != 0)
            .collect()
    }
}

/// A built-in role (response.md §1.5, RSP-522). Built-in roles cannot be changed (RSP-524).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuiltinRole {
    pub role_id: i64,
    pub role_name: &'static str,
    pub description: &'static str,
}

pub const BUILTIN: [BuiltinRole; 3] = [
    BuiltinRole {
        role_id: ROLE_ADMIN,
        role_name: "Admin",
        description: "Every permission point.",
    },
    BuiltinRole {
        role_id: ROLE_RESPONDER,
        role_name: "Responder",
        description: "Every permission point except Members Manage, Roles Manage and SSO Manage.",
    },
    BuiltinRole {
        role_id: ROLE_VIEWER,
        role_name: "Viewer",
        description: "Every Read point except Audit Read.",
    },
];

/// RSP-522: the points of a built-in role; `None` for any other id.
pub fn builtin_points(role_id: i64) -> Option<Points> {
    match role_id {
        ROLE_ADMIN => Some(Points::all()),
        ROLE_RESPONDER => Some(Points::of(
            &Point::ALL
                .into_iter()
                .filter(|p| {
                    !matches!(
                        p,
                        Point::MembersManage | Point::RolesManage | Point::SsoManage
                    )
                })
                .collect::<Vec<_>>(),
        )),
        ROLE_VIEWER => Some(Points::of(
            &Point::ALL
                .into_iter()
                .filter(|p| p.is_read() && *p != Point::AuditRead)
                .collect::<Vec<_>>(),
        )),
        _ => None,
    }
}

pub fn is_builtin(role_id: i64) -> bool {
    builtin_points(role_id).is_some()
}

/// RSP-522, OQ-35: a built-in role by its name, or by the older names of the local docs
/// (`Account.Admin` and `Fin.Admin` → Admin, `Tech.Admin` → Responder). Case-insensitive.
pub fn builtin_by_name(name: &str) -> Option<BuiltinRole> {
    let n = name.trim();
    let id = if n.eq_ignore_ascii_case("Account.Admin") || n.eq_ignore_ascii_case("Fin.Admin") {
        ROLE_ADMIN
    } else if n.eq_ignore_ascii_case("Tech.Admin") {
        ROLE_RESPONDER
    } else {
        BUILTIN
            .iter()
            .find(|r| r.role_name.eq_ignore_ascii_case(n))?
            .role_id
    };
    BUILTIN.iter().copied().find(|r| r.role_id == id)
}

/// A custom role as the policy needs it (RSP-524): its points and whether it is enabled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomRole {
    pub role_id: i64,
    pub points: Points,
    pub enabled: bool,
}

/// The authenticated caller, with everything the policy needs to decide without a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub member_id: i64,
    /// RSP-523: the owner holds every feature and data permission.
    pub is_owner: bool,
    /// Holds the built-in Admin role (RSP-526 visibility, RSP-527 shared integrations).
    pub is_admin: bool,
    /// The effective feature permission: the union of the enabled roles (RSP-524).
    pub points: Points,
}

impl Actor {
    /// The actor for a member with `role_ids`; `custom` holds the account's custom roles
    /// among them (ids of unknown or deleted roles grant nothing).
    ///
    /// RSP-522: a member with no role at all acts as a Responder. A member whose roles are
    /// all disabled holds nothing (a disabled role grants nothing, §1.5).
    pub fn new(member_id: i64, is_owner: bool, role_ids: &[i64], custom: &[CustomRole]) -> Actor {
        let points = if role_ids.is_empty() {
            builtin_points(ROLE_RESPONDER).unwrap_or_default()
        } else {
            role_ids.iter().fold(Points::NONE, |acc, id| {
                let granted = builtin_points(*id).or_else(|| {
                    custom
                        .iter()
                        .find(|r| r.role_id == *id && r.enabled)
                        .map(|r| r.points)
                });
                acc.union(granted.unwrap_or_default())
            })
        };
        Actor {
            member_id,
            is_owner,
            is_admin: role_ids.contains(&ROLE_ADMIN),
            points: if is_owner { Points::all() } else { points },
        }
    }

    /// The account principal (an account-level APP key, §1.26): acts as the owner.
    pub fn owner(member_id: i64) -> Actor {
        Actor {
            member_id,
            is_owner: true,
            is_admin: true,
            points: Points::all(),
        }
    }
}

/// The kind of object a data permission is about (RSP-527).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    Team,
    Channel,
    Schedule,
    Template,
    Calendar,
    SharedIntegration,
}

impl ObjectKind {
    fn name(self) -> &'static str {
        match self {
            ObjectKind::Team => "team",
            ObjectKind::Channel => "channel",
            ObjectKind::Schedule => "schedule",
            ObjectKind::Template => "template",
            ObjectKind::Calendar => "service calendar",
            ObjectKind::SharedIntegration => "integration",
        }
    }
}

/// Who manages one object (RSP-527): its creator and management teams, and, for a team, its
/// members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataScope {
    pub kind: ObjectKind,
    pub creator_id: i64,
    /// The management teams (a channel's `team_id` plus its `managing_team_ids`, OQ-47);
    /// for a team, the team itself.
    pub team_ids: Vec<i64>,
}

/// Why a call is refused (RSP-529): a missing feature permission names the point, a missing
/// data permission names the object kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    Feature(Point),
    Data(ObjectKind),
    /// Reserved to the account's administrators: the owner and members holding the
    /// built-in Admin role (`Account.Admin`), whatever custom roles grant.
    AccountAdmin,
}

impl fmt::Display for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Denied::Feature(p) => write!(f, "feature permission {p} is missing"),
            Denied::Data(k) => write!(
                f,
                "data permission on this {} is missing: only its creator, its management team \
                 and the owner may change it",
                k.name()
            ),
            Denied::AccountAdmin => f.write_str(
                "only the account owner and members with the Admin role (Account.Admin) may do this",
            ),
        }
    }
}

/// The feature check (RSP-520, RSP-521): whether `actor` holds `point`, and, when the call is
/// about an existing object, whether it may change that object (RSP-527).
pub fn allowed(
    actor: &Actor,
    point: Point,
    object: Option<(&DataScope, &[i64])>,
) -> Result<(), Denied> {
    if actor.is_owner {
        return Ok(());
    }
    if !actor.points.grants(point) {
        return Err(Denied::Feature(point));
    }
    match object {
        Some((scope, my_teams)) if !may_change(actor, scope, my_teams) => {
            Err(Denied::Data(scope.kind))
        }
        _ => Ok(()),
    }
}

/// Account administration beyond any permission point (service-agreement.md SVC-183: "admins
/// may also bulk-delete"): the owner, an account-level APP key (it acts as the owner), or a
/// member holding the built-in Admin role. A custom role never qualifies, even with every
/// point, because no point says "may erase the account's history".
pub fn account_admin(actor: &Actor) -> Result<(), Denied> {
    if actor.is_owner || actor.is_admin {
        Ok(())
    } else {
        Err(Denied::AccountAdmin)
    }
}

/// The data check (RSP-527) for an actor who belongs to `my_teams`.
pub fn may_change(actor: &Actor, scope: &DataScope, my_teams: &[i64]) -> bool {
    if actor.is_owner || (scope.creator_id != 0 && scope.creator_id == actor.member_id) {
        return true;
    }
    let in_team = scope
        .team_ids
        .iter()
        .any(|t| *t != 0 && my_teams.contains(t));
    match scope.kind {
        ObjectKind::Team
        | ObjectKind::Channel
        | ObjectKind::Schedule
        | ObjectKind::Template
        | ObjectKind::Calendar => in_team,
        // Shared integrations: the Admin role also may; without a management team, anyone
        // holding Integrations Manage.
        ObjectKind::SharedIntegration => {
            in_team
                || actor.is_admin
                || (scope.team_ids.iter().all(|t| *t == 0)
                    && actor.points.grants(Point::IntegrationsManage))
        }
    }
}

/// A channel's privacy and managers, as visibility needs them (response.md §1.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelAccess {
    pub channel_id: i64,
    pub is_private: bool,
    pub creator_id: i64,
    pub team_id: i64,
    pub managing_team_ids: Vec<i64>,
}

/// RSP-526, RSP-507: whether an incident of `channel` (`None`: a global incident, or a
/// channel that no longer exists) is listed, searched and counted for `actor`, a member of
/// `my_teams`. Public channels and global incidents: anyone with `Incidents Read`. Private
/// channels: their creator, members of their team or managing teams, Admins and the owner.
pub fn listed(actor: &Actor, my_teams: &[i64], channel: Option<&ChannelAccess>) -> bool {
    if actor.is_owner {
        return true;
    }
    if !actor.points.grants(Point::IncidentsRead) {
        return false;
    }
    let Some(c) = channel else {
        return true;
    };
    !c.is_private
        || actor.is_admin
        || (c.creator_id != 0 && c.creator_id == actor.member_id)
        || std::iter::once(&c.team_id)
            .chain(&c.managing_team_ids)
            .any(|t| *t != 0 && my_teams.contains(t))
}

/// Whether listing needs the caller's teams at all (owners and Admins see everything, and
/// members without `Incidents Read` see nothing), so the server can skip loading them.
pub fn visibility_needs_teams(actor: &Actor) -> bool {
    !actor.is_owner && !actor.is_admin && actor.points.grants(Point::IncidentsRead)
}

/// Why a role change is refused (RSP-523, RSP-525).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoleChangeRefused {
    /// The caller lacks `Members Manage` and the change is not a downgrade of themselves.
    Denied(Denied),
    /// RSP-525: nobody adds a role to themselves, nor drops roles in a way that gains
    /// rights (dropping the last role makes a Viewer a Responder, RSP-522).
    SelfGrant,
    /// RSP-523: the owner cannot be demoted.
    OwnerDemoted,
}

impl fmt::Display for RoleChangeRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RoleChangeRefused::Denied(d) => d.fmt(f),
            RoleChangeRefused::SelfGrant => {
                f.write_str("role_ids: a member may drop their own roles but never add one")
            }
            RoleChangeRefused::OwnerDemoted => {
                f.write_str("member_id: the account owner cannot be demoted")
            }
        }
    }
}

/// RSP-525, RSP-523: may `actor` change the roles of `target` (the owner when
/// `target_is_owner`) from `before` to `after`? `custom` holds the account's custom roles
/// among `after`.
pub fn may_change_roles(
    actor: &Actor,
    target: i64,
    target_is_owner: bool,
    before: &[i64],
    after: &[i64],
    custom: &[CustomRole],
) -> Result<(), RoleChangeRefused> {
    if target_is_owner && before.iter().any(|r| !after.contains(r)) {
        return Err(RoleChangeRefused::OwnerDemoted);
    }
    if target == actor.member_id && !actor.is_owner {
        // Dropping one's own roles is a downgrade; adding one never is, and neither is a
        // drop that ends with more rights than before.
        let adds = after.iter().any(|r| !before.contains(r));
        let gains = !Actor::new(target, false, after, custom)
            .points
            .within(actor.points);
        return if adds || gains {
            Err(RoleChangeRefused::SelfGrant)
        } else {
            Ok(())
        };
    }
    allowed(actor, Point::MembersManage, None).map_err(RoleChangeRefused::Denied)
}

#[cfg(test)]
mod tests;
