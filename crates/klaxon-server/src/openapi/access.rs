//! The one place Open API routes meet the permission policy (response.md §2.29, RSP-520,
//! RSP-521, RSP-529; DESIGN.md principle 6).
//!
//! [`ROUTES`] gives every Open API path the feature permission it needs. The dispatcher
//! consults it after authentication and before the body is read, so a refused call changes
//! nothing and no handler can forget the check; a path missing from the table is refused for
//! everyone (deny by default), and a test makes sure every served path is in it.
//!
//! Data permissions (RSP-527) and incident visibility (RSP-526) depend on the object and are
//! decided by `klaxon_core::permissions` in the handlers that load the object.

use klaxon_core::error::{ApiError, ErrorCode};
use klaxon_core::permissions::{self, Actor, DataScope, Denied, ObjectKind, Point};

use super::{Args, Caller};
use crate::state::AppState;

/// What a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Any authenticated member: the caller's own profile and account, and the directory
    /// (names of members and teams, roles) that every screen needs to show people. §2.29
    /// has no Read point for members, teams or roles.
    Member,
    /// A feature permission point (RSP-521).
    Point(Point),
    /// `Channels Manage` plus the data permission (RSP-527) on the channel the call changes
    /// (the body's `channel_id`, or the channel of the rule its `rule_id` names): its
    /// creator, the members of its team and managing teams, the owner. Checked by
    /// [`check_object`] once the body is read.
    ChannelWrite,
    /// Member role changes: `Members Manage`, except that anyone may drop their own roles
    /// (RSP-525). The handler must decide with `permissions::may_change_roles` for every
    /// member it changes (openapi/roles.rs does).
    RoleChange,
    /// Inbound integrations (openapi-compat.md 2.6.1, RSP-521): a dedicated one is configured
    /// inside its channel (`Channels Manage`), a shared one needs `Integrations Manage`. The
    /// route check lets either through; [`check_object`] decides by the kind (the body's
    /// `kind`/`category` on create, the stored integration otherwise).
    IntegrationWrite,
    /// Reading an inbound integration's configuration (its alert pipeline): `Channels Read`
    /// or `Integrations Read`, so whoever may change it under [`Access::IntegrationWrite`]
    /// (a dedicated one with `Channels Manage`, a shared one with `Integrations Manage`) can
    /// also see it.
    IntegrationRead,
    /// The caller's own settings that any member may change (their notification preference,
    /// response.md §2.21): no permission point, but a write, so it is audited (RSP-600). The
    /// handler acts on the caller only.
    OwnSettings,
    /// The account's administrators only: the owner and the built-in Admin role
    /// (`permissions::account_admin`), for what no permission point covers — erasing incident
    /// history in bulk (service-agreement.md SVC-183).
    AccountAdmin,
}

use Access::{
    AccountAdmin, ChannelWrite, IntegrationRead, IntegrationWrite, Member, OwnSettings, Point as P,
    RoleChange,
};
use Point::*;

/// Every Open API path and what it needs.
pub const ROUTES: &[(&str, Access)] = &[
    // Account and the caller.
    ("/account/info", Member),
    // Account settings: administration, like inviting members (Admins and the owner).
    ("/account/reset", P(MembersManage)),
    // Single sign-on (RSP-570).
    ("/account/sso/info", P(SsoRead)),
    ("/account/sso/update", P(SsoManage)),
    ("/member/info", Member),
    ("/person/infos", Member),
    // Members (RSP-521 Members Manage: invite, delete, roles).
    ("/member/list", Member),
    ("/member/invite", P(MembersManage)),
    ("/member/delete", P(MembersManage)),
    ("/member/info/reset", P(MembersManage)),
    // One's own name, language and time zone (email and phone: below, RSP-333).
    ("/member/self/reset", Member),
    // One's own email and phone, after a code sent to the new one (RSP-333).
    ("/member/self/contact/code", OwnSettings),
    ("/member/self/contact/verify", OwnSettings),
    // One's own devices for app push (RSP-285): only the member manages them.
    ("/member/self/device/list", Member),
    ("/member/self/device/create", OwnSettings),
    ("/member/self/device/delete", OwnSettings),
    // One's own notification preference (response.md §2.21): only the member changes it.
    ("/member/preference/info", Member),
    ("/member/preference/update", OwnSettings),
    // One's own incident list columns (RSP-506): only the member changes them.
    ("/member/list-columns/info", Member),
    ("/member/list-columns/update", OwnSettings),
    ("/member/role/grant", RoleChange),
    ("/member/role/revoke", RoleChange),
    ("/member/role/update", RoleChange),
    // Roles (RSP-524).
    ("/role/list", Member),
    ("/role/info", Member),
    ("/role/permission/list", Member),
    ("/role/permission/factor/list", Member),
    ("/role/upsert", P(RolesManage)),
    ("/role/delete", P(RolesManage)),
    ("/role/enable", P(RolesManage)),
    ("/role/disable", P(RolesManage)),
    ("/role/member/grant", RoleChange),
    ("/role/member/revoke", RoleChange),
    // Teams.
    ("/team/list", Member),
    ("/team/info", Member),
    ("/team/infos", Member),
    ("/team/upsert", P(TeamsManage)),
    ("/team/delete", P(TeamsManage)),
    // RSP-556: any member leaves a team of their own; audited as a write.
    ("/team/leave", OwnSettings),
    // APP keys (RSP-610).
    ("/app-key/list", P(ApiKeysRead)),
    ("/app-key/create", P(ApiKeysManage)),
    ("/app-key/delete", P(ApiKeysManage)),
    // Channels and everything configured inside them.
    ("/channel/list", P(ChannelsRead)),
    ("/channel/info", P(ChannelsRead)),
    ("/channel/infos", P(ChannelsRead)),
    ("/channel/create", P(ChannelsManage)),
    ("/channel/update", ChannelWrite),
    ("/channel/delete", ChannelWrite),
    ("/channel/enable", ChannelWrite),
    ("/channel/disable", ChannelWrite),
    // ING-160: a dry run over the channel's recent events; it changes nothing.
    ("/channel/grouping/preview", P(ChannelsRead)),
    ("/channel/escalate/rule/list", P(ChannelsRead)),
    ("/channel/escalate/rule/info", P(ChannelsRead)),
    ("/channel/escalate/rule/create", ChannelWrite),
    ("/channel/escalate/rule/update", ChannelWrite),
    ("/channel/escalate/rule/delete", ChannelWrite),
    ("/channel/escalate/rule/enable", ChannelWrite),
    ("/channel/escalate/rule/disable", ChannelWrite),
    ("/channel/escalate/rule/reorder", ChannelWrite),
    ("/channel/silence/rule/list", P(ChannelsRead)),
    ("/channel/silence/rule/info", P(ChannelsRead)),
    ("/channel/silence/rule/create", ChannelWrite),
    ("/channel/silence/rule/update", ChannelWrite),
    ("/channel/silence/rule/delete", ChannelWrite),
    ("/channel/silence/rule/enable", ChannelWrite),
    ("/channel/silence/rule/disable", ChannelWrite),
    ("/channel/inhibit/rule/list", P(ChannelsRead)),
    ("/channel/inhibit/rule/info", P(ChannelsRead)),
    ("/channel/inhibit/rule/create", ChannelWrite),
    ("/channel/inhibit/rule/update", ChannelWrite),
    ("/channel/inhibit/rule/delete", ChannelWrite),
    ("/channel/inhibit/rule/enable", ChannelWrite),
    ("/channel/inhibit/rule/disable", ChannelWrite),
    ("/channel/unsubscribe/rule/list", P(ChannelsRead)),
    ("/channel/unsubscribe/rule/info", P(ChannelsRead)),
    ("/channel/unsubscribe/rule/create", ChannelWrite),
    ("/channel/unsubscribe/rule/update", ChannelWrite),
    ("/channel/unsubscribe/rule/delete", ChannelWrite),
    ("/channel/unsubscribe/rule/enable", ChannelWrite),
    ("/channel/unsubscribe/rule/disable", ChannelWrite),
    ("/alert-event/outcome/list", P(ChannelsRead)),
    // Inbound integrations (openapi-compat.md 2.6.1): a dedicated integration is configured
    // inside its channel (RSP-521 Channels Manage), a shared one needs Integrations Manage.
    ("/integration/list", P(ChannelsRead)),
    ("/integration/info", P(ChannelsRead)),
    ("/integration/create", IntegrationWrite),
    ("/integration/update", IntegrationWrite),
    ("/integration/delete", IntegrationWrite),
    ("/integration/enable", IntegrationWrite),
    ("/integration/disable", IntegrationWrite),
    ("/integration/rotate-key", IntegrationWrite),
    // The field-mapping dry run (ING-049) stores nothing; it may read an integration's saved
    // mapping, so it needs what reading that configuration needs.
    ("/integration/field-mapping/preview", IntegrationRead),
    // HTTP pull integrations (ingest.md ING-228, ING-229): starting a pull acts on the
    // integration; its history is configuration to read.
    ("/integration/pull/trigger", IntegrationWrite),
    ("/integration/pull/history", IntegrationRead),
    // Routes of shared alert integrations (ingest.md §2.8; docs/routing.md): Integrations
    // Read to look and preview, Integrations Manage to save or roll back.
    ("/route/info", P(IntegrationsRead)),
    ("/route/list", P(IntegrationsRead)),
    ("/route/history/list", P(IntegrationsRead)),
    ("/route/diff", P(IntegrationsRead)),
    ("/route/preview", P(IntegrationsRead)),
    ("/route/upsert", P(IntegrationsManage)),
    ("/route/rollback", P(IntegrationsManage)),
    // The alert pipeline of an alert integration (ingest.md §2.7; docs/pipeline.md): saving
    // is configuring the integration, so a dedicated one needs Channels Manage and a shared
    // one Integrations Manage (as `/integration/update`); reading needs either Read point.
    ("/alert/pipeline/info", IntegrationRead),
    ("/alert/pipeline/list", IntegrationRead),
    ("/alert/pipeline/upsert", IntegrationWrite),
    // Incidents, their alerts and events: Read to look, Manage for every action of
    // §2.2–§2.11 (RSP-001), quick silence (§2.11) included.
    ("/insight/account", P(AnalyticsRead)),
    ("/insight/team", P(AnalyticsRead)),
    ("/insight/channel", P(AnalyticsRead)),
    ("/insight/responder", P(AnalyticsRead)),
    ("/insight/incident/list", P(AnalyticsRead)),
    ("/insight/alert/topk-by-label", P(AnalyticsRead)),
    ("/insight/incident/export", P(AnalyticsRead)),
    ("/insight/team/export", P(AnalyticsRead)),
    ("/insight/channel/export", P(AnalyticsRead)),
    ("/insight/responder/export", P(AnalyticsRead)),
    ("/incident/list", P(IncidentsRead)),
    ("/incident/info", P(IncidentsRead)),
    ("/incident/list-by-ids", P(IncidentsRead)),
    ("/incident/alert/list", P(IncidentsRead)),
    ("/incident/feed", P(IncidentsRead)),
    ("/incident/past/list", P(IncidentsRead)),
    ("/incident/notification/list", P(IncidentsRead)),
    ("/alert/list", P(IncidentsRead)),
    ("/alert/info", P(IncidentsRead)),
    ("/alert-event/list", P(IncidentsRead)),
    ("/alert/list-by-ids", P(IncidentsRead)),
    ("/alert/event/list", P(IncidentsRead)),
    ("/alert/feed", P(IncidentsRead)),
    ("/change/list", P(IncidentsRead)),
    ("/incident/create", P(IncidentsManage)),
    ("/incident/ack", P(IncidentsManage)),
    ("/incident/unack", P(IncidentsManage)),
    ("/incident/resolve", P(IncidentsManage)),
    ("/incident/close", P(IncidentsManage)),
    ("/incident/reopen", P(IncidentsManage)),
    ("/incident/snooze", P(IncidentsManage)),
    ("/incident/wake", P(IncidentsManage)),
    ("/incident/comment", P(IncidentsManage)),
    ("/incident/reset", P(IncidentsManage)),
    ("/incident/field/reset", P(IncidentsManage)),
    ("/incident/assign", P(IncidentsManage)),
    ("/incident/merge", P(IncidentsManage)),
    ("/alert/merge", P(IncidentsManage)),
    ("/incident/responder/add", P(IncidentsManage)),
    ("/incident/quick-silence", P(IncidentsManage)),
    // SVC-183: bulk deletion by time range, account administrators only.
    ("/incident/bulk-delete", AccountAdmin),
    // SVC-182: the owner and account administrators take full exports.
    ("/account/export/create", AccountAdmin),
    ("/account/export/list", AccountAdmin),
    ("/account/export/info", AccountAdmin),
    // Access grants to the operator's staff (SVC-221): the owner and Admins only.
    ("/account/access-grant/create", AccountAdmin),
    ("/account/access-grant/revoke", AccountAdmin),
    ("/account/access-grant/list", AccountAdmin),
    // Consent to cross-region transfers (SVC-212): the owner gives and revokes it (the
    // handler checks the owner); Admins may read it.
    ("/account/transfer-consent/create", AccountAdmin),
    ("/account/transfer-consent/revoke", AccountAdmin),
    ("/account/transfer-consent/list", AccountAdmin),
    // The notification providers of the account's region (SVC-214): any member may read
    // who receives message contents.
    ("/account/delivery-provider/list", Member),
    // Custom fields.
    ("/field/list", P(CustomFieldsRead)),
    ("/field/info", P(CustomFieldsRead)),
    ("/field/create", P(CustomFieldsManage)),
    ("/field/update", P(CustomFieldsManage)),
    ("/field/delete", P(CustomFieldsManage)),
    // Schedules. A member's own iCal feed is theirs to reset.
    // Notification templates (RSP-352: Templates Manage to create; editing and deleting also
    // need the data permission, checked in the handler).
    ("/template/list", P(TemplatesRead)),
    ("/template/info", P(TemplatesRead)),
    ("/template/preview", P(TemplatesRead)),
    ("/template/create", P(TemplatesManage)),
    ("/template/update", P(TemplatesManage)),
    ("/template/delete", P(TemplatesManage)),
    ("/schedule/list", P(SchedulesRead)),
    ("/schedule/info", P(SchedulesRead)),
    ("/schedule/infos", P(SchedulesRead)),
    ("/schedule/self", P(SchedulesRead)),
    ("/schedule/preview", P(SchedulesRead)),
    ("/schedule/self/feed/reset", P(SchedulesRead)),
    ("/schedule/create", P(SchedulesManage)),
    ("/schedule/update", P(SchedulesManage)),
    ("/schedule/delete", P(SchedulesManage)),
    ("/schedule/feed/reset", P(SchedulesManage)),
    // Service calendars.
    ("/calendar/list", P(CalendarsRead)),
    ("/calendar/info", P(CalendarsRead)),
    ("/calendar/event/list", P(CalendarsRead)),
    ("/calendar/holiday/list", P(CalendarsRead)),
    ("/calendar/create", P(CalendarsManage)),
    ("/calendar/update", P(CalendarsManage)),
    ("/calendar/delete", P(CalendarsManage)),
    ("/calendar/event/upsert", P(CalendarsManage)),
    ("/calendar/event/delete", P(CalendarsManage)),
    ("/calendar/holiday/import", P(CalendarsManage)),
    ("/calendar/holiday/delete", P(CalendarsManage)),
    // The audit log (RSP-604).
    ("/audit/search", P(AuditRead)),
    ("/audit/operation/list", P(AuditRead)),
    // Outbound webhooks (response.md 1.18, §2.23): integrations, so Integrations Manage to
    // configure and Integrations Read to look, the delivery history included (RSP-521).
    ("/webhook/list", P(IntegrationsRead)),
    ("/webhook/info", P(IntegrationsRead)),
    ("/webhook/history/list", P(IntegrationsRead)),
    ("/webhook/history/detail", P(IntegrationsRead)),
    ("/webhook/create", P(IntegrationsManage)),
    ("/webhook/update", P(IntegrationsManage)),
    ("/webhook/delete", P(IntegrationsManage)),
    // Custom actions and links (response.md 1.19, 1.20): integrations as well; changing an
    // existing one also needs its data permission, checked by the handler (RSP-403, RSP-527).
    ("/custom-action/list", P(IntegrationsRead)),
    ("/custom-action/info", P(IntegrationsRead)),
    ("/custom-action/create", P(IntegrationsManage)),
    ("/custom-action/update", P(IntegrationsManage)),
    ("/custom-action/delete", P(IntegrationsManage)),
    ("/link/list", P(IntegrationsRead)),
    ("/link/info", P(IntegrationsRead)),
    ("/link/create", P(IntegrationsManage)),
    ("/link/update", P(IntegrationsManage)),
    ("/link/delete", P(IntegrationsManage)),
    // Invoking a custom action acts on the incident (RSP-400).
    ("/incident/custom-action/do", P(IncidentsManage)),
    // Ticket sync (response.md 1.23, RSP-403…406): integrations too; changing an existing one
    // also needs its data permission, checked by the handler. Starting a manual sync acts on
    // the incident, like a custom action.
    ("/ticket-sync/list", P(IntegrationsRead)),
    ("/ticket-sync/info", P(IntegrationsRead)),
    ("/ticket-sync/log/list", P(IntegrationsRead)),
    ("/ticket-sync/create", P(IntegrationsManage)),
    ("/ticket-sync/update", P(IntegrationsManage)),
    ("/ticket-sync/delete", P(IntegrationsManage)),
    ("/incident/ticket-sync/do", P(IncidentsManage)),
    // Label enrichment (ingest.md §2.5): an integration's rules are part of its configuration
    // (a dedicated one's channel, or Integrations Manage for a shared one); mapping tables are
    // account-wide integration settings.
    ("/enrichment/info", P(ChannelsRead)),
    ("/enrichment/list", P(ChannelsRead)),
    ("/enrichment/upsert", IntegrationWrite),
    ("/enrichment/mapping/schema/info", P(IntegrationsRead)),
    ("/enrichment/mapping/schema/list", P(IntegrationsRead)),
    ("/enrichment/mapping/schema/create", P(IntegrationsManage)),
    ("/enrichment/mapping/schema/update", P(IntegrationsManage)),
    ("/enrichment/mapping/schema/delete", P(IntegrationsManage)),
    ("/enrichment/mapping/data/list", P(IntegrationsRead)),
    ("/enrichment/mapping/data/download", P(IntegrationsRead)),
    ("/enrichment/mapping/data/upload", P(IntegrationsManage)),
    ("/enrichment/mapping/data/upsert", P(IntegrationsManage)),
    ("/enrichment/mapping/data/delete", P(IntegrationsManage)),
    ("/enrichment/mapping/api/info", P(IntegrationsRead)),
    ("/enrichment/mapping/api/list", P(IntegrationsRead)),
    ("/enrichment/mapping/api/create", P(IntegrationsManage)),
    ("/enrichment/mapping/api/update", P(IntegrationsManage)),
    ("/enrichment/mapping/api/delete", P(IntegrationsManage)),
    // IM integrations (response.md 1.21) and linked identities (RSP-301): integrations, like
    // webhooks (RSP-521).
    ("/im/integration/list", P(IntegrationsRead)),
    ("/im/integration/info", P(IntegrationsRead)),
    ("/im/person/list", P(IntegrationsRead)),
    ("/im/integration/create", P(IntegrationsManage)),
    ("/im/integration/delete", P(IntegrationsManage)),
    ("/im/person/link", P(IntegrationsManage)),
    ("/im/person/unlink", P(IntegrationsManage)),
    ("/im/person/link_by_phone", P(IntegrationsManage)),
    // Any member may ask for a code that links their own Teams account (RSP-301).
    ("/im/person/link_code", Member),
    // War rooms (RSP-430): creating, dissolving and inviting need Incidents Manage; whoever
    // can open the incident sees its war room (RSP-431).
    ("/incident/war-room/create", P(IncidentsManage)),
    ("/incident/war-room/delete", P(IncidentsManage)),
    ("/incident/war-room/add-member", P(IncidentsManage)),
    ("/incident/war-room/default-observers", P(IncidentsManage)),
    ("/incident/war-room/list", P(IncidentsRead)),
    ("/incident/war-room/detail", P(IncidentsRead)),
    ("/datasource/im/war-room-enabled/list", P(IncidentsRead)),
    ("/datasource/im/person/try-link", P(IntegrationsManage)),
    ("/datasource/im/war-room-enabled/set", P(IntegrationsManage)),
    // SaaS licences (SVC-058): any member may see who holds them.
    ("/account/licence/info", Member),
    // Agreements and notices (service-agreement.md §3, §20): any member may read the
    // versions in force; the notice inbox and the tenant's decisions are its
    // administrators' (SVC-035/036). Refusing and the evidence export are the owner's: the
    // handler checks it (SVC-038, SVC-040).
    ("/account/agreement/list", Member),
    ("/account/notice/list", AccountAdmin),
    ("/account/agreement/accept", AccountAdmin),
    ("/account/agreement/refuse", AccountAdmin),
    ("/account/agreement/evidence", AccountAdmin),
    // SLA report and compensation claims (SVC-281/282): the owner and Admins, who stand in
    // for the finance administrator (Klaxon has no separate finance role).
    ("/account/sla/report", AccountAdmin),
    ("/account/sla/claim/submit", AccountAdmin),
    ("/account/sla/claim/list", AccountAdmin),
];

/// SVC-052 / RSP-008: whether a call on `path` needs a licence (cloud `commercial` tenants
/// only; `crate::saas::check_licence`). Licensed: viewing incidents, alerts and their
/// events; every incident action; creating or changing operational configuration
/// (channels and their rules, integrations, escalation, schedules, templates, calendars,
/// custom fields, silences). Not licensed: reading configuration, the caller's own
/// profile and feed link, and administration (members, teams, roles, APP keys, audit log,
/// licences). Derived from the route's permission so a new route is classified with it.
pub fn licensed(path: &str) -> bool {
    match access(path) {
        Some(Access::Point(point)) => match point {
            IncidentsRead | IncidentsManage | AnalyticsRead => true,
            ChannelsManage | IntegrationsManage | SchedulesManage | TemplatesManage
            | CalendarsManage | CustomFieldsManage | MappingsManage => true,
            // Alert events and what noise reduction did with them are alert data.
            ChannelsRead => {
                path == "/alert-event/outcome/list" || path == "/channel/grouping/preview"
            }
            _ => false,
        },
        // Changing an integration (dedicated or shared, ING-090) is channel configuration.
        Some(Access::ChannelWrite | Access::IntegrationWrite) => true,
        // Reading configuration is not licensed. SVC-183, SVC-013: deleting one's data is a
        // floor of the agreement, never gated by a licence (nor by the service state, see
        // `saas::check_write`).
        Some(
            Access::Member
            | Access::RoleChange
            | Access::IntegrationRead
            | Access::AccountAdmin
            | Access::OwnSettings,
        )
        | None => false,
    }
}

/// What `path` needs; `None` for a path the table does not know.
pub fn access(path: &str) -> Option<Access> {
    ROUTES.iter().find(|(p, _)| *p == path).map(|(_, a)| *a)
}

/// Whether a route changes something (RSP-600: its calls are audited). Manage points, channel
/// writes and role changes are writes; Read points and `Member` routes are reads, except the
/// few self-service resets (a member's own calendar feed link, their own profile).
pub fn is_write(path: &str) -> bool {
    match access(path) {
        Some(Access::Point(point)) => !point.is_read() || path.ends_with("/reset"),
        Some(
            Access::ChannelWrite
            | Access::RoleChange
            | Access::IntegrationWrite
            | Access::OwnSettings,
        ) => true,
        // Administrators' own reads (the export history) are not changes.
        Some(Access::AccountAdmin) => {
            !(path.ends_with("/list") || path.ends_with("/info") || path.ends_with("/report"))
        }
        Some(Access::Member) => path.ends_with("/reset"),
        Some(Access::IntegrationRead) | None => false,
    }
}

/// RSP-529: the wire error of a refusal (`permission_denied` → 403 `AccessDenied`).
pub fn denied(d: &Denied) -> ApiError {
    ApiError::new(ErrorCode::AccessDenied, d.to_string())
}

/// The route check: `Ok` when `actor` may call `path` at all.
pub fn check(actor: &Actor, path: &str) -> Result<(), ApiError> {
    match access(path) {
        Some(Access::Member | Access::RoleChange | Access::OwnSettings) => Ok(()),
        Some(Access::Point(point)) => {
            permissions::allowed(actor, point, None).map_err(|d| denied(&d))
        }
        Some(Access::ChannelWrite) => {
            permissions::allowed(actor, Point::ChannelsManage, None).map_err(|d| denied(&d))
        }
        Some(Access::IntegrationWrite) => permissions::allowed(actor, Point::ChannelsManage, None)
            .or_else(|_| permissions::allowed(actor, Point::IntegrationsManage, None))
            .map_err(|d| denied(&d)),
        Some(Access::IntegrationRead) => permissions::allowed(actor, Point::ChannelsRead, None)
            .or_else(|_| permissions::allowed(actor, Point::IntegrationsRead, None))
            .map_err(|d| denied(&d)),
        Some(Access::AccountAdmin) => permissions::account_admin(actor).map_err(|d| denied(&d)),
        // Deny by default: a served path without an entry is a bug, never an open door.
        None => Err(ApiError::new(
            ErrorCode::AccessDenied,
            format!("{path}: no permission rule is defined for this route"),
        )),
    }
}

/// The channel a [`Access::ChannelWrite`] call changes: a rule's own channel when the body
/// names an existing rule (the stored one, whatever `channel_id` the body claims), else the
/// body's `channel_id`.
async fn target_channel(
    state: &AppState,
    caller: &Caller,
    path: &str,
    args: &Args,
) -> Result<Option<i64>, ApiError> {
    let internal = |e: klaxon_store::StoreError| ApiError::internal(e.to_string());
    if let Some(rule_id) = args.str("rule_id")?.filter(|r| !r.is_empty()) {
        if path.starts_with("/channel/escalate/rule/") {
            if let Some(rule) = state
                .store
                .escalation_rule(caller.account_id, &rule_id)
                .await
                .map_err(internal)?
            {
                return Ok(Some(rule.channel_id));
            }
        } else if path.contains("/rule/")
            && let Some(rule) = state
                .store
                .noise_rule(caller.account_id, &rule_id, state.clock.now())
                .await
                .map_err(internal)?
        {
            return Ok(Some(rule.channel_id));
        }
    }
    Ok(args.i64("channel_id")?.filter(|id| *id > 0))
}

/// The object check of routes that change one object (RSP-527), once the body is read. An
/// unknown object passes: the handler answers `ResourceNotFound` as it would for anyone.
pub async fn check_object(
    state: &AppState,
    caller: &Caller,
    path: &str,
    args: &Args,
) -> Result<(), ApiError> {
    if caller.actor.is_owner {
        return Ok(());
    }
    if access(path) == Some(Access::IntegrationWrite) {
        return check_integration(state, caller, path, args).await;
    }
    if access(path) != Some(Access::ChannelWrite) {
        return Ok(());
    }
    let Some(channel_id) = target_channel(state, caller, path, args).await? else {
        return Ok(());
    };
    let Some(settings) = state
        .store
        .channel_settings(caller.account_id, channel_id)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
    else {
        return Ok(());
    };
    let c = &settings.channel;
    let scope = DataScope {
        kind: ObjectKind::Channel,
        creator_id: c.creator_id,
        team_ids: std::iter::once(c.team_id)
            .chain(c.managing_team_ids.iter().copied())
            .filter(|t| *t != 0)
            .collect(),
    };
    let my_teams = state
        .store
        .member_team_ids(caller.account_id, caller.member_id)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    permissions::allowed(
        &caller.actor,
        Point::ChannelsManage,
        Some((&scope, &my_teams)),
    )
    .map_err(|d| denied(&d))
}

/// [`Access::IntegrationWrite`]: `Integrations Manage` for a shared integration (alert or
/// change; without a management team anyone holding it may change one, RSP-527), `Channels
/// Manage` for a dedicated one. An unknown integration passes: the handler answers
/// `ResourceNotFound` as it would for anyone.
async fn check_integration(
    state: &AppState,
    caller: &Caller,
    path: &str,
    args: &Args,
) -> Result<(), ApiError> {
    let shared = if path == "/integration/create" {
        args.str("kind")?.as_deref() == Some("shared")
            || args.str("category")?.as_deref() == Some("change")
            || args.str("type")?.as_deref() == Some("jira")
    } else {
        let Some(id) = args.i64("integration_id")?.filter(|id| *id > 0) else {
            return Ok(());
        };
        match state
            .store
            .integration(caller.account_id, id)
            .await
            .map_err(|e| ApiError::internal(e.to_string()))?
        {
            Some(i) => i.kind == "shared",
            None => return Ok(()),
        }
    };
    let point = if shared {
        Point::IntegrationsManage
    } else {
        Point::ChannelsManage
    };
    permissions::allowed(&caller.actor, point, None).map_err(|d| denied(&d))
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn every_served_path_has_exactly_one_rule() {
        // spec: RSP-520 — every operation is guarded.
        let mut seen = HashSet::new();
        for (path, _) in ROUTES {
            assert!(seen.insert(*path), "{path} is listed twice");
        }
        for path in super::super::served_paths() {
            assert!(access(path).is_some(), "{path} has no permission rule");
        }
        for (path, _) in ROUTES {
            assert!(
                super::super::served_paths().any(|p| p == *path),
                "{path} has a rule but is not served"
            );
        }
    }

    #[test]
    fn licensed_routes_follow_svc_052() {
        // spec: SVC-052
        // spec: RSP-008
        for path in [
            "/incident/list",
            "/incident/info",
            "/incident/ack",
            "/incident/comment",
            "/incident/merge",
            "/alert/list",
            "/alert-event/list",
            "/alert-event/outcome/list",
            "/channel/create",
            "/channel/update",
            "/channel/silence/rule/create",
            "/channel/escalate/rule/update",
            "/integration/create",
            "/schedule/update",
            "/template/create",
            "/calendar/event/upsert",
            "/field/create",
        ] {
            assert!(licensed(path), "{path} needs a licence");
        }
        for path in [
            "/account/info",
            "/member/info",
            "/member/invite",
            "/member/delete",
            "/role/upsert",
            "/team/upsert",
            "/app-key/create",
            "/audit/search",
            "/channel/list",
            "/schedule/info",
            "/schedule/self/feed/reset",
            "/account/licence/info",
            "/incident/bulk-delete",
            "/nowhere",
        ] {
            assert!(!licensed(path), "{path} needs no licence");
        }
    }

    #[test]
    fn ones_own_preference_is_an_audited_write_for_any_member() {
        // spec: RSP-330 (a member's own preference), RSP-600 (writes are audited)
        let no_roles = Actor::new(5, false, &[], &[]);
        assert!(check(&no_roles, "/member/preference/info").is_ok());
        assert!(check(&no_roles, "/member/preference/update").is_ok());
        assert!(is_write("/member/preference/update"));
        assert!(!is_write("/member/preference/info"));
        assert!(!licensed("/member/preference/update"));
    }

    #[test]
    fn unknown_paths_are_refused() {
        // spec: RSP-520
        let owner = Actor::owner(1);
        let e = check(&owner, "/nowhere").unwrap_err();
        assert_eq!(e.code, ErrorCode::AccessDenied);
    }

    #[test]
    fn routes_need_the_integration_points() {
        // spec: RSP-521, RSP-527 (shared integrations), ING-095
        use klaxon_core::permissions::{CustomRole, Points};
        let viewer = Actor::new(5, false, &[8], &[]);
        assert!(check(&viewer, "/route/info").is_ok());
        assert!(check(&viewer, "/route/preview").is_ok());
        let e = check(&viewer, "/route/upsert").unwrap_err();
        assert!(e.message.contains("Integrations Manage"), "{}", e.message);
        assert!(check(&viewer, "/route/rollback").is_err());
        assert!(is_write("/route/upsert") && is_write("/route/rollback"));
        assert!(!is_write("/route/preview") && !is_write("/route/diff"));
        // Either Manage point passes the route check of integration writes; the object
        // check then asks for the one the integration's kind needs.
        let integrations_only = CustomRole {
            role_id: 100,
            points: Points::of(&[Point::IntegrationsManage]),
            enabled: true,
        };
        let actor = Actor::new(5, false, &[100], &[integrations_only]);
        assert!(check(&actor, "/integration/create").is_ok());
        assert!(check(&actor, "/route/upsert").is_ok());
        assert!(check(&viewer, "/integration/create").is_err());
    }

    #[test]
    fn bulk_deletion_is_for_account_administrators() {
        // spec: SVC-183 (admins may bulk-delete), RSP-523 (the owner), RSP-529
        use klaxon_core::permissions::{CustomRole, Points};
        assert!(check(&Actor::owner(1), "/incident/bulk-delete").is_ok());
        assert!(check(&Actor::new(5, false, &[2], &[]), "/incident/bulk-delete").is_ok());
        let everything = CustomRole {
            role_id: 100,
            points: Points::all(),
            enabled: true,
        };
        for actor in [
            Actor::new(5, false, &[6], &[]),
            Actor::new(5, false, &[8], &[]),
            Actor::new(5, false, &[100], &[everything]),
        ] {
            let e = check(&actor, "/incident/bulk-delete").unwrap_err();
            assert_eq!(e.code, ErrorCode::AccessDenied);
            assert!(e.message.contains("Admin"), "{}", e.message);
        }
        assert!(is_write("/incident/bulk-delete"));
        // spec: SVC-182 (starting an export is audited; reading the history is not a write)
        assert!(is_write("/account/export/create"));
        assert!(!is_write("/account/export/list") && !is_write("/account/export/info"));
    }

    #[test]
    fn access_grants_are_for_the_owner_and_admins() {
        // spec: SVC-221 (created and revoked by the owner or an Admin, never Tech.Admin)
        use klaxon_core::permissions::{CustomRole, Points};
        let everything = CustomRole {
            role_id: 100,
            points: Points::all(),
            enabled: true,
        };
        for path in [
            "/account/access-grant/create",
            "/account/access-grant/revoke",
            "/account/access-grant/list",
        ] {
            assert!(check(&Actor::owner(1), path).is_ok());
            assert!(check(&Actor::new(5, false, &[2], &[]), path).is_ok());
            for actor in [
                Actor::new(5, false, &[6], &[]),
                Actor::new(5, false, &[100], std::slice::from_ref(&everything)),
            ] {
                let e = check(&actor, path).unwrap_err();
                assert_eq!(e.code, ErrorCode::AccessDenied);
            }
            assert!(!licensed(path), "{path} needs no licence");
        }
        // Creation and revocation are audited writes; the list is not.
        assert!(is_write("/account/access-grant/create"));
        assert!(is_write("/account/access-grant/revoke"));
        assert!(!is_write("/account/access-grant/list"));
    }

    #[test]
    fn transfer_consents_are_for_the_owner_and_admins() {
        // spec: SVC-212 (the handler narrows create and revoke to the owner)
        for path in [
            "/account/transfer-consent/create",
            "/account/transfer-consent/revoke",
            "/account/transfer-consent/list",
        ] {
            assert!(check(&Actor::owner(1), path).is_ok());
            assert!(check(&Actor::new(5, false, &[2], &[]), path).is_ok());
            let e = check(&Actor::new(5, false, &[6], &[]), path).unwrap_err();
            assert_eq!(e.code, ErrorCode::AccessDenied);
            assert!(!licensed(path), "{path} needs no licence");
        }
        assert!(is_write("/account/transfer-consent/create"));
        assert!(is_write("/account/transfer-consent/revoke"));
        assert!(!is_write("/account/transfer-consent/list"));
        // spec: SVC-214 (any member reads the providers of the region)
        assert!(
            check(
                &Actor::new(5, false, &[6], &[]),
                "/account/delivery-provider/list"
            )
            .is_ok()
        );
        assert!(!is_write("/account/delivery-provider/list"));
        assert!(!licensed("/account/delivery-provider/list"));
    }

    #[test]
    fn a_viewer_reads_but_does_not_act() {
        // spec: RSP-522, RSP-529
        let viewer = Actor::new(5, false, &[8], &[]);
        assert!(check(&viewer, "/incident/list").is_ok());
        let e = check(&viewer, "/incident/ack").unwrap_err();
        assert_eq!(e.code, ErrorCode::AccessDenied);
        assert!(e.message.contains("Incidents Manage"), "{}", e.message);
        // Role changes pass the route check; the handler decides (RSP-525).
        assert!(check(&viewer, "/member/role/revoke").is_ok());
    }
}
