//! The OpenAPI 3.1 document of what Klaxon serves (issue 8, "the contract"), generated from
//! the route table and served unauthenticated at `GET /openapi.json`.
//!
//! Every Open API path of [`super::served_paths`] must have an entry in [`OPERATIONS`]: a
//! one-line summary, its request body and the shape of its `data`. A served path without an
//! entry fails `every_served_path_is_documented`, so the document cannot fall behind the
//! router. Request bodies are written in a small field notation ([`body_schema`]) so an entry
//! stays one line next to the others; the wire rules they describe are those of the handlers
//! (openapi-compat.md 1.3: unknown fields are ignored, absent and zero values mean the same,
//! an empty body is `{}`).
//!
//! The rendered document is committed as `docs/openapi.json`; a test compares the two and
//! `klaxon openapi > docs/openapi.json` (or `KLAXON_BLESS=1`) regenerates it.

use klaxon_core::error::ErrorCode;
use serde_json::{Map, Value, json};

/// What a successful call puts in `data`.
#[derive(Debug, Clone, Copy)]
pub enum Data {
    /// Nothing: `data` is absent (acknowledgements, deletions, …).
    Nothing,
    /// A JSON value whose shape the document does not pin down.
    Any,
    /// A JSON object whose members the document does not pin down.
    Object,
    /// A list page: `items` plus the paging members the endpoint sends.
    List,
    /// A list page whose items are the named component schema.
    ListOf(&'static str),
    /// The named component schema.
    Schema(&'static str),
    /// A CSV file instead of the envelope (openapi-compat.md 1.4).
    Csv,
}

use Data::{Any, Csv, List, ListOf, Nothing, Object, Schema};

/// One Open API operation: path, summary, request body in field notation, success data.
pub type Operation = (&'static str, &'static str, &'static str, Data);

/// Fields shared by offset-paged list requests (openapi-compat.md 1.6): values ≤ 0 are
/// clamped to the defaults, never refused.
const PAGING: &str = "p:int limit:int asc:bool search_after_ctx:str";

/// Every Open API operation (all `POST`, openapi-compat.md 1.1). Field notation: `name:type`,
/// `*` after the name marks a required field; types are `int`, `id` (a positive integer id),
/// `ts` (Unix seconds), `str`, `strN` (at most N characters), `oid` (24-hex id), `num`
/// (6-hex incident number), `bool`, `obj`, `labels` (string map), `any`, `csv` (a
/// comma-separated string, or an array of strings), `[type]` for arrays, and `a|b|c` for a
/// string enum. `@paging` stands for the common paging fields.
pub const OPERATIONS: &[Operation] = &[
    // Account and the caller.
    (
        "/account/info",
        "The caller's account",
        "",
        Schema("Account"),
    ),
    (
        "/account/reset",
        "Change account settings",
        "account_name:str locale:str time_zone:str incident_retention_days:int",
        Object,
    ),
    (
        "/account/licence/info",
        "Who holds the account's licences",
        "",
        Object,
    ),
    (
        "/account/notice/list",
        "The account's notices: in-app, e-mail and announcements (cloud mode)",
        "before_id:id limit:int",
        List,
    ),
    (
        "/account/agreement/list",
        "Published agreement versions and the account's decision on each (cloud mode)",
        "",
        List,
    ),
    (
        "/account/agreement/accept",
        "Accept a published agreement version",
        "version_id*:id",
        Object,
    ),
    (
        "/account/agreement/refuse",
        "Refuse an agreement version and stop the service (owner only)",
        "version_id*:id",
        Object,
    ),
    (
        "/account/agreement/evidence",
        "The account's acceptance history with the documents and their hashes (owner only)",
        "",
        Object,
    ),
    (
        "/account/sla/report",
        "The account's SLA figures for a month: failed and excluded cycles, F(M), C(M) (cloud mode)",
        "month*:str",
        Object,
    ),
    (
        "/account/sla/claim/submit",
        "Claim the SLA compensation of a month inside its claim window (cloud mode)",
        "month*:str",
        Object,
    ),
    (
        "/account/sla/claim/list",
        "The account's SLA compensation claims and their decisions",
        "",
        List,
    ),
    (
        "/account/export/create",
        "Start a full export of the account",
        "",
        Object,
    ),
    (
        "/account/export/list",
        "Past exports of the account",
        "",
        List,
    ),
    (
        "/account/export/info",
        "One export",
        "export_id*:id",
        Object,
    ),
    (
        "/account/access-grant/create",
        "Let the operator's staff access the account's data for a while (cloud mode)",
        "grantee_staff_id:int scope*:str channel_ids:[id] purpose*:str500 ticket_id:str100 start_time:ts end_time:ts",
        Object,
    ),
    (
        "/account/access-grant/revoke",
        "End an access grant now",
        "grant_id*:id",
        Object,
    ),
    (
        "/account/access-grant/list",
        "The account's access grants",
        "",
        List,
    ),
    (
        "/account/transfer-consent/create",
        "Consent to a transfer of the account's data out of its region (owner only, cloud mode)",
        "purpose*:str destination_region*:str categories*:[str]",
        Object,
    ),
    (
        "/account/transfer-consent/revoke",
        "Revoke a consent to a cross-region transfer (owner only)",
        "consent_id*:id",
        Object,
    ),
    (
        "/account/transfer-consent/list",
        "The account's consents to cross-region transfers, given and revoked",
        "",
        List,
    ),
    (
        "/account/delivery-provider/list",
        "The notification providers used in the account's region and where they process messages (cloud mode)",
        "",
        List,
    ),
    (
        "/account/sso/info",
        "The account's single sign-on configuration (without its client secret or bind password)",
        "",
        Object,
    ),
    (
        "/account/sso/update",
        "Change the account's single sign-on configuration",
        "enabled:bool protocol:oidc|saml2|cas|ldap login_domain:str63 create_account_on_login:bool field_mapping:obj default_role_ids:[id] oidc:obj ldap:obj cas:obj saml:obj team_mapping:obj",
        Object,
    ),
    (
        "/member/info",
        "The caller as a member",
        "",
        Schema("Member"),
    ),
    (
        "/person/infos",
        "Names of members and account principals",
        "person_ids*:[int]",
        ListOf("Person"),
    ),
    // Members.
    (
        "/member/list",
        "List members",
        "@paging query:str orderby:created_at|updated_at role_ids:[int] team_ids:[int]",
        ListOf("Member"),
    ),
    ("/member/invite", "Invite members", "members*:[obj]", Object),
    (
        "/member/delete",
        "Delete a member",
        "member_id:id member_name:str email:str phone:str country_code:str ref_id:str",
        Nothing,
    ),
    (
        "/member/info/reset",
        "Change a member's profile",
        "member_id:id member_name:str email:str phone:str country_code:str ref_id:str updates*:obj",
        Nothing,
    ),
    (
        "/member/self/reset",
        "Change the caller's own profile",
        "updates*:obj",
        Nothing,
    ),
    (
        "/member/self/contact/code",
        "Send a verification code to a new email address or phone number of the caller",
        "email:str phone:str country_code:str",
        Object,
    ),
    (
        "/member/self/contact/verify",
        "Make the address or number the code was sent to the caller's, verified",
        "kind*:str code*:str",
        Object,
    ),
    (
        "/member/self/device/list",
        "List the caller's devices for app push",
        "",
        Object,
    ),
    (
        "/member/self/device/create",
        "Add a device for app push and get the ntfy topic URL to subscribe it to",
        "name*:str",
        Object,
    ),
    (
        "/member/self/device/delete",
        "Remove one of the caller's devices for app push",
        "device_id*:id",
        Nothing,
    ),
    (
        "/member/preference/info",
        "The caller's notification preference",
        "",
        Object,
    ),
    (
        "/member/preference/update",
        "Change the caller's notification preference",
        "member_id:int rules:[obj]",
        Object,
    ),
    (
        "/member/list-columns/info",
        "The caller's incident list columns",
        "",
        Object,
    ),
    (
        "/member/list-columns/update",
        "Choose the caller's incident list columns",
        "columns*:[str]",
        Object,
    ),
    (
        "/member/role/grant",
        "Grant roles to a member",
        "member_id*:id role_ids*:[int]",
        Nothing,
    ),
    (
        "/member/role/revoke",
        "Revoke roles from a member",
        "member_id*:id role_ids*:[int]",
        Nothing,
    ),
    (
        "/member/role/update",
        "Replace a member's roles",
        "member_id*:id role_ids*:[int]",
        Nothing,
    ),
    // Roles.
    ("/role/list", "List roles", "", List),
    ("/role/info", "One role", "role_id:id role_name:str", Object),
    ("/role/permission/list", "Every permission point", "", Any),
    (
        "/role/permission/factor/list",
        "What decides the data permission of each kind of object",
        "",
        Any,
    ),
    (
        "/role/upsert",
        "Create or change a custom role",
        "role_id:int role_name*:str description:str permissions*:[str]",
        Object,
    ),
    (
        "/role/delete",
        "Delete a custom role",
        "role_id*:id",
        Nothing,
    ),
    (
        "/role/enable",
        "Enable a custom role",
        "role_id*:id",
        Nothing,
    ),
    (
        "/role/disable",
        "Disable a custom role",
        "role_id*:id",
        Nothing,
    ),
    (
        "/role/member/grant",
        "Grant a role to members",
        "role_id*:id member_ids*:[int]",
        Nothing,
    ),
    (
        "/role/member/revoke",
        "Revoke a role from members",
        "role_id*:id member_ids*:[int]",
        Nothing,
    ),
    // Teams.
    (
        "/team/list",
        "List teams",
        "@paging query:str orderby:created_at|updated_at|team_name person_id:int is_my_team:bool",
        ListOf("Team"),
    ),
    (
        "/team/info",
        "One team",
        "team_id:id team_name:str ref_id:str",
        Schema("Team"),
    ),
    (
        "/team/infos",
        "Several teams",
        "team_ids*:[int]",
        ListOf("Team"),
    ),
    (
        "/team/upsert",
        "Create or change a team",
        "team_id:int team_name:str100 description:str ref_id:str person_ids:[int] reset_if_name_exist:bool",
        Object,
    ),
    (
        "/team/delete",
        "Delete a team",
        "team_id:id team_name:str ref_id:str",
        Nothing,
    ),
    (
        "/team/leave",
        "Leave a team the caller belongs to",
        "team_id:id team_name:str ref_id:str",
        Object,
    ),
    // APP keys.
    ("/app-key/list", "The caller's APP keys", "", List),
    (
        "/app-key/create",
        "Create an APP key (shown once)",
        "key_name*:str account_level:bool",
        Object,
    ),
    (
        "/app-key/delete",
        "Revoke an APP key",
        "key_id*:id",
        Nothing,
    ),
    // Channels.
    (
        "/channel/list",
        "List channels",
        "@paging query:str channel_name:str channel_ids:[int] team_ids:[int] orderby:ranking|created_at|updated_at|channel_name|last_incident_at",
        ListOf("Channel"),
    ),
    (
        "/channel/info",
        "One channel",
        "channel_id*:id",
        Schema("Channel"),
    ),
    (
        "/channel/infos",
        "Channels by id (at most 100)",
        "channel_ids*:[int]",
        ListOf("Channel"),
    ),
    (
        "/channel/create",
        "Create a channel",
        "channel_name*:str description:str team_id:int managing_team_ids:[int] is_private:bool auto_resolve_timeout:int auto_resolve_mode:str disable_auto_close:bool group:obj flapping:obj",
        Object,
    ),
    (
        "/channel/update",
        "Change a channel",
        "channel_id*:id channel_name:str description:str team_id:int managing_team_ids:[int] is_private:bool auto_resolve_timeout:int auto_resolve_mode:str disable_auto_close:bool group:obj flapping:obj",
        Nothing,
    ),
    (
        "/channel/delete",
        "Delete a channel",
        "channel_id*:id",
        Nothing,
    ),
    (
        "/channel/enable",
        "Enable a channel",
        "channel_id*:id",
        Nothing,
    ),
    (
        "/channel/disable",
        "Disable a channel",
        "channel_id*:id",
        Nothing,
    ),
    (
        "/channel/grouping/preview",
        "Replay a channel's recent events through a proposed grouping",
        "channel_id*:id group:obj",
        Object,
    ),
    (
        "/channel/escalate/rule/list",
        "A channel's escalation rules",
        "channel_id*:id",
        List,
    ),
    (
        "/channel/escalate/rule/info",
        "One escalation rule",
        "channel_id:int rule_id*:oid",
        Object,
    ),
    (
        "/channel/escalate/rule/create",
        "Create an escalation rule",
        "channel_id*:id rule_name*:str description:str template_id:str layers*:[obj] filters:any time_filters:any aggr_window:int priority:int",
        Object,
    ),
    (
        "/channel/escalate/rule/update",
        "Change an escalation rule",
        "channel_id:int rule_id*:oid rule_name:str description:str template_id:str layers:[obj] filters:any time_filters:any aggr_window:int priority:int",
        Nothing,
    ),
    (
        "/channel/escalate/rule/delete",
        "Delete an escalation rule",
        "channel_id:int rule_id*:oid",
        Nothing,
    ),
    (
        "/channel/escalate/rule/enable",
        "Enable an escalation rule",
        "channel_id:int rule_id*:oid",
        Nothing,
    ),
    (
        "/channel/escalate/rule/disable",
        "Disable an escalation rule",
        "channel_id:int rule_id*:oid",
        Nothing,
    ),
    (
        "/channel/escalate/rule/reorder",
        "Order a channel's escalation rules",
        "channel_id*:id rule_ids*:[oid]",
        Nothing,
    ),
    (
        "/channel/silence/rule/list",
        "A channel's silence rules",
        "channel_id*:id",
        List,
    ),
    (
        "/channel/silence/rule/info",
        "One silence rule",
        "channel_id:int rule_id*:oid",
        Object,
    ),
    (
        "/channel/silence/rule/create",
        "Create a silence rule",
        "channel_id*:id rule_name*:str description:str filters:any time_filter:any from_incident_id:oid",
        Object,
    ),
    (
        "/channel/silence/rule/update",
        "Change a silence rule",
        "channel_id:int rule_id*:oid rule_name:str description:str filters:any time_filter:any",
        Nothing,
    ),
    (
        "/channel/silence/rule/delete",
        "Delete a silence rule",
        "channel_id:int rule_id*:oid",
        Nothing,
    ),
    (
        "/channel/silence/rule/enable",
        "Enable a silence rule",
        "channel_id:int rule_id*:oid",
        Nothing,
    ),
    (
        "/channel/silence/rule/disable",
        "Disable a silence rule",
        "channel_id:int rule_id*:oid",
        Nothing,
    ),
    (
        "/channel/inhibit/rule/list",
        "A channel's inhibit rules",
        "channel_id*:id",
        List,
    ),
    (
        "/channel/inhibit/rule/info",
        "One inhibit rule",
        "channel_id:int rule_id*:oid",
        Object,
    ),
    (
        "/channel/inhibit/rule/create",
        "Create an inhibit rule",
        "channel_id*:id rule_name*:str description:str source_filters:any target_filters:any equals:[str]",
        Object,
    ),
    (
        "/channel/inhibit/rule/update",
        "Change an inhibit rule",
        "channel_id:int rule_id*:oid rule_name:str description:str source_filters:any target_filters:any equals:[str]",
        Nothing,
    ),
    (
        "/channel/inhibit/rule/delete",
        "Delete an inhibit rule",
        "channel_id:int rule_id*:oid",
        Nothing,
    ),
    (
        "/channel/inhibit/rule/enable",
        "Enable an inhibit rule",
        "channel_id:int rule_id*:oid",
        Nothing,
    ),
    (
        "/channel/inhibit/rule/disable",
        "Disable an inhibit rule",
        "channel_id:int rule_id*:oid",
        Nothing,
    ),
    (
        "/channel/unsubscribe/rule/list",
        "A channel's unsubscribe rules",
        "channel_id*:id",
        List,
    ),
    (
        "/channel/unsubscribe/rule/info",
        "One unsubscribe rule",
        "channel_id:int rule_id*:oid",
        Object,
    ),
    (
        "/channel/unsubscribe/rule/create",
        "Create an unsubscribe rule",
        "channel_id*:id rule_name*:str description:str filters:any",
        Object,
    ),
    (
        "/channel/unsubscribe/rule/update",
        "Change an unsubscribe rule",
        "channel_id:int rule_id*:oid rule_name:str description:str filters:any",
        Nothing,
    ),
    (
        "/channel/unsubscribe/rule/delete",
        "Delete an unsubscribe rule",
        "channel_id:int rule_id*:oid",
        Nothing,
    ),
    (
        "/channel/unsubscribe/rule/enable",
        "Enable an unsubscribe rule",
        "channel_id:int rule_id*:oid",
        Nothing,
    ),
    (
        "/channel/unsubscribe/rule/disable",
        "Disable an unsubscribe rule",
        "channel_id:int rule_id*:oid",
        Nothing,
    ),
    // Inbound integrations (openapi-compat.md 2.6.1).
    (
        "/integration/create",
        "Create an inbound integration",
        "integration_name*:str type*:str kind*:dedicated|shared category:alert|change channel_id:int enabled:bool default_channel_ids:[int] settings:obj",
        Object,
    ),
    (
        "/integration/list",
        "List inbound integrations",
        "@paging query:str categories:[str] types:[str] kinds:[str] channel_ids:[int] enabled:bool",
        List,
    ),
    (
        "/integration/info",
        "One inbound integration",
        "integration_id*:id",
        Object,
    ),
    (
        "/integration/update",
        "Change an inbound integration",
        "integration_id*:id integration_name:str type:str kind:dedicated|shared channel_id:int settings:obj",
        Object,
    ),
    (
        "/integration/delete",
        "Delete an inbound integration",
        "integration_id*:id",
        Nothing,
    ),
    (
        "/integration/enable",
        "Enable an inbound integration",
        "integration_id*:id",
        Nothing,
    ),
    (
        "/integration/disable",
        "Disable an inbound integration",
        "integration_id*:id",
        Nothing,
    ),
    (
        "/integration/rotate-key",
        "Replace an integration's push key",
        "integration_id*:id",
        Object,
    ),
    (
        "/integration/field-mapping/preview",
        "Dry-run a field mapping on a sample event",
        "integration_id:int field_mapping:obj value_mapping:obj sample*:any",
        Object,
    ),
    (
        "/integration/pull/trigger",
        "Run an HTTP pull integration now",
        "integration_id*:id",
        Object,
    ),
    (
        "/integration/pull/history",
        "An HTTP pull integration's runs",
        "integration_id*:id p:int limit:int",
        List,
    ),
    // Routes of shared alert integrations.
    (
        "/route/info",
        "An integration's route",
        "integration_id*:id",
        Object,
    ),
    (
        "/route/list",
        "Routes of several integrations",
        "integration_ids:[int]",
        List,
    ),
    (
        "/route/upsert",
        "Save an integration's route",
        "integration_id*:id cases:[obj] default:obj version:int",
        Object,
    ),
    (
        "/route/history/list",
        "Saved versions of a route",
        "integration_id*:id p:int limit:int orderby:str asc:bool",
        List,
    ),
    (
        "/route/rollback",
        "Restore a saved route version",
        "integration_id*:id version*:int",
        Object,
    ),
    (
        "/route/preview",
        "Dry-run a route on an event",
        "integration_id:int route:obj event:obj alert_ids:[oid]",
        Object,
    ),
    (
        "/route/diff",
        "Compare route versions",
        "integration_id*:id from_version:int to_version:int",
        Object,
    ),
    // The alert pipeline of an integration.
    (
        "/alert/pipeline/info",
        "An integration's alert pipeline",
        "integration_id*:id",
        Object,
    ),
    (
        "/alert/pipeline/list",
        "Alert pipelines of several integrations",
        "integration_ids:[int]",
        List,
    ),
    (
        "/alert/pipeline/upsert",
        "Save an integration's alert pipeline",
        "integration_id*:id rules:[obj]",
        Object,
    ),
    // Label enrichment.
    (
        "/enrichment/info",
        "An integration's enrichment rules",
        "integration_id*:id",
        Object,
    ),
    (
        "/enrichment/list",
        "Enrichment rules of several integrations",
        "integration_ids:[int]",
        List,
    ),
    (
        "/enrichment/upsert",
        "Save an integration's enrichment rules",
        "integration_id*:id rules:[obj]",
        Object,
    ),
    (
        "/enrichment/mapping/schema/create",
        "Create a mapping table",
        "name*:str description:str team_id:int source_label_keys*:[str] result_label_keys*:[str]",
        Object,
    ),
    (
        "/enrichment/mapping/schema/update",
        "Change a mapping table",
        "schema_id*:str name:str description:str team_id:int source_label_keys:[str] result_label_keys:[str]",
        Object,
    ),
    (
        "/enrichment/mapping/schema/delete",
        "Delete a mapping table",
        "schema_id*:str",
        Nothing,
    ),
    (
        "/enrichment/mapping/schema/info",
        "One mapping table",
        "schema_id*:str",
        Object,
    ),
    (
        "/enrichment/mapping/schema/list",
        "List mapping tables",
        "@paging",
        List,
    ),
    (
        "/enrichment/mapping/data/upload",
        "Replace a mapping table's rows from CSV",
        "schema_id*:str csv*:str",
        Object,
    ),
    (
        "/enrichment/mapping/data/upsert",
        "Add or change mapping rows",
        "schema_id*:str rows*:[labels]",
        Object,
    ),
    (
        "/enrichment/mapping/data/delete",
        "Delete mapping rows",
        "schema_id*:str rows*:[labels]",
        Object,
    ),
    (
        "/enrichment/mapping/data/list",
        "A mapping table's rows",
        "schema_id*:str search:str @paging",
        List,
    ),
    (
        "/enrichment/mapping/data/download",
        "A mapping table as CSV",
        "schema_id*:str",
        Csv,
    ),
    (
        "/enrichment/mapping/api/create",
        "Create a label mapping service",
        "api_name*:str description:str team_id:int url*:str headers:obj timeout:int retry_count:int insecure_skip_verify:bool status:enabled|disabled",
        Object,
    ),
    (
        "/enrichment/mapping/api/update",
        "Change a label mapping service",
        "api_id*:str api_name:str description:str team_id:int url:str headers:obj timeout:int retry_count:int insecure_skip_verify:bool status:enabled|disabled",
        Object,
    ),
    (
        "/enrichment/mapping/api/delete",
        "Delete a label mapping service",
        "api_id*:str",
        Nothing,
    ),
    (
        "/enrichment/mapping/api/info",
        "One label mapping service",
        "api_id*:str",
        Object,
    ),
    (
        "/enrichment/mapping/api/list",
        "List label mapping services",
        "@paging",
        List,
    ),
    // Incidents (openapi-compat.md 2.1).
    (
        "/incident/list",
        "List incidents started in a window of at most 31 days",
        "@paging start_time*:ts end_time*:ts channel_ids:[int] progress:csv incident_severity:csv incident_ids:[oid] nums:[num] query:str creator_ids:[int] closer_ids:[int] responder_ids:[int] acker_ids:[int] team_ids:[int] is_snoozed:bool ever_muted:bool fields:obj labels:obj",
        ListOf("Incident"),
    ),
    (
        "/incident/info",
        "One incident",
        "incident_id*:oid",
        Schema("Incident"),
    ),
    (
        "/incident/list-by-ids",
        "Incidents by id (at most 100)",
        "incident_ids*:[oid]",
        ListOf("Incident"),
    ),
    (
        "/incident/create",
        "Create an incident by hand",
        "title*:str512 incident_severity*:Critical|Warning|Info description:str6144 channel_id:int assigned_to:obj fields:obj",
        Schema("Created"),
    ),
    (
        "/incident/ack",
        "Acknowledge incidents",
        "incident_ids:[oid] incident_id:oid",
        Schema("Batch"),
    ),
    (
        "/incident/unack",
        "Withdraw an acknowledgement",
        "incident_ids:[oid] incident_id:oid",
        Schema("Batch"),
    ),
    (
        "/incident/resolve",
        "Resolve incidents",
        "incident_ids:[oid] incident_id:oid root_cause:str6144 resolution:str6144",
        Schema("Batch"),
    ),
    (
        "/incident/close",
        "Close incidents (alias of resolve)",
        "incident_ids:[oid] incident_id:oid root_cause:str6144 resolution:str6144",
        Schema("Batch"),
    ),
    (
        "/incident/reopen",
        "Reopen closed incidents",
        "incident_ids:[oid] incident_id:oid reason:str",
        Schema("Batch"),
    ),
    (
        "/incident/snooze",
        "Snooze incidents",
        "incident_ids:[oid] incident_id:oid minutes*:int",
        Schema("Batch"),
    ),
    (
        "/incident/wake",
        "End a snooze",
        "incident_ids:[oid] incident_id:oid",
        Schema("Batch"),
    ),
    (
        "/incident/assign",
        "Reassign incidents",
        "incident_ids:[oid] incident_id:oid assigned_to*:obj",
        Schema("Batch"),
    ),
    (
        "/incident/comment",
        "Comment on incidents",
        "incident_ids:[oid] incident_id:oid comment*:str mute_reply:bool",
        Schema("Batch"),
    ),
    (
        "/incident/reset",
        "Change an incident's title, description or severity",
        "incident_id*:oid title:str512 description:str6144 impact:str6144 root_cause:str6144 resolution:str6144 incident_severity:Critical|Warning|Info",
        Nothing,
    ),
    (
        "/incident/field/reset",
        "Set a custom field on an incident",
        "incident_id*:oid field_name*:str field_value:any",
        Nothing,
    ),
    (
        "/incident/merge",
        "Merge incidents into one",
        "target_incident_id*:oid source_incident_ids*:[oid] title:str512 comment:str1024",
        Nothing,
    ),
    (
        "/incident/responder/add",
        "Add responders to an incident",
        "incident_id*:oid person_ids*:[int]",
        Nothing,
    ),
    (
        "/incident/feed",
        "An incident's timeline",
        "incident_id*:oid p:int limit:int asc:bool types:[str]",
        ListOf("FeedEntry"),
    ),
    (
        "/incident/past/list",
        "Similar past incidents",
        "incident_id*:oid limit:int",
        List,
    ),
    (
        "/incident/notification/list",
        "Notifications sent for an incident",
        "incident_id*:oid limit:int",
        List,
    ),
    (
        "/incident/alert/list",
        "An incident's alerts",
        "incident_id*:oid is_active:bool @paging",
        ListOf("Alert"),
    ),
    (
        "/incident/quick-silence",
        "Silence alerts like an incident's",
        "incident_id*:oid minutes:int",
        Object,
    ),
    (
        "/incident/bulk-delete",
        "Erase incident history in a time range",
        "start_time*:ts end_time*:ts dry_run:bool confirm_phrase:str",
        Object,
    ),
    // Alerts and events (openapi-compat.md 2.3).
    (
        "/alert/list",
        "List alerts started in a window of at most 31 days",
        "@paging start_time*:ts end_time*:ts is_active:bool alert_severity:csv channel_ids:[int] integration_ids:[int] alert_ids:[oid] alert_keys:[str] incident_id:oid ever_muted:bool mark_rule_id:str",
        ListOf("Alert"),
    ),
    ("/alert/info", "One alert", "alert_id*:oid", Schema("Alert")),
    (
        "/alert/list-by-ids",
        "Alerts by id (at most 100)",
        "alert_ids*:[oid]",
        ListOf("Alert"),
    ),
    (
        "/alert/event/list",
        "One alert's events",
        "alert_id*:oid @paging",
        ListOf("AlertEvent"),
    ),
    (
        "/alert/feed",
        "An alert's timeline",
        "alert_id*:oid p:int limit:int asc:bool types:[a_new|a_update|a_merge|a_close]",
        ListOf("AlertFeedEntry"),
    ),
    (
        "/alert/merge",
        "Move alerts into an incident",
        "incident_id*:oid alert_ids*:[oid] title:str512 comment:str1024",
        Object,
    ),
    (
        "/alert-event/list",
        "List alert events",
        "@paging start_time:ts end_time:ts integration_ids:[int] integration_types:[str] channel_ids:[int] severities:csv alert_id:oid",
        ListOf("AlertEvent"),
    ),
    (
        "/alert-event/outcome/list",
        "What noise reduction did with events",
        "@paging start_time:ts end_time:ts outcomes:csv request_id:str channel_ids:[int] integration_ids:[int] alert_id:oid rule_id:str",
        List,
    ),
    // Changes (openapi-compat.md 2.13).
    (
        "/change/list",
        "List change events",
        "@paging start_time:ts end_time:ts orderby:start_time|last_time channel_ids:[int] integration_ids:[int] query:str include_events:bool",
        List,
    ),
    // Insights (openapi-compat.md 2.14, response.md §2.27).
    (
        "/insight/account",
        "How the account responded over a period",
        "start_time*:ts end_time*:ts team_ids:[int] channel_ids:[int] responder_ids:[int] severities:[str] incident_ids:[str] query:str labels:obj fields:obj is_my_team:bool time_zone:str seconds_to_ack_from:int seconds_to_ack_to:int seconds_to_close_from:int seconds_to_close_to:int orderby:str asc:bool split_hours:bool aggregate_unit:hour|day|week|month",
        Object,
    ),
    (
        "/insight/team",
        "How each team responded over a period",
        "start_time*:ts end_time*:ts team_ids:[int] channel_ids:[int] responder_ids:[int] severities:[str] incident_ids:[str] query:str labels:obj fields:obj is_my_team:bool time_zone:str seconds_to_ack_from:int seconds_to_ack_to:int seconds_to_close_from:int seconds_to_close_to:int orderby:str asc:bool split_hours:bool aggregate_unit:hour|day|week|month",
        Object,
    ),
    (
        "/insight/channel",
        "How each channel responded over a period",
        "start_time*:ts end_time*:ts team_ids:[int] channel_ids:[int] responder_ids:[int] severities:[str] incident_ids:[str] query:str labels:obj fields:obj is_my_team:bool time_zone:str seconds_to_ack_from:int seconds_to_ack_to:int seconds_to_close_from:int seconds_to_close_to:int orderby:str asc:bool split_hours:bool aggregate_unit:hour|day|week|month",
        Object,
    ),
    (
        "/insight/responder",
        "How each responder responded over a period",
        "start_time*:ts end_time*:ts team_ids:[int] channel_ids:[int] responder_ids:[int] severities:[str] incident_ids:[str] query:str labels:obj fields:obj is_my_team:bool time_zone:str seconds_to_ack_from:int seconds_to_ack_to:int seconds_to_close_from:int seconds_to_close_to:int orderby:str asc:bool",
        Object,
    ),
    (
        "/insight/incident/list",
        "The incidents of a period with their response figures",
        "start_time*:ts end_time*:ts team_ids:[int] channel_ids:[int] responder_ids:[int] severities:[str] incident_ids:[str] query:str labels:obj fields:obj is_my_team:bool time_zone:str seconds_to_ack_from:int seconds_to_ack_to:int seconds_to_close_from:int seconds_to_close_to:int orderby:str @paging",
        List,
    ),
    (
        "/insight/alert/topk-by-label",
        "The check or resource label values with the most alert events over a period",
        "start_time*:ts end_time*:ts team_ids:[int] channel_ids:[int] responder_ids:[int] severities:[str] incident_ids:[str] query:str labels:obj fields:obj is_my_team:bool time_zone:str seconds_to_ack_from:int seconds_to_ack_to:int seconds_to_close_from:int seconds_to_close_to:int label*:check|resource k:int orderby:total_alert_cnt|total_alert_event_cnt",
        Object,
    ),
    (
        "/insight/incident/export",
        "The incidents of a period with their response figures as CSV (no labels)",
        "start_time*:ts end_time*:ts team_ids:[int] channel_ids:[int] responder_ids:[int] severities:[str] incident_ids:[str] query:str labels:obj fields:obj is_my_team:bool time_zone:str seconds_to_ack_from:int seconds_to_ack_to:int seconds_to_close_from:int seconds_to_close_to:int asc:bool export_fields:[str] description_html_to_text:bool",
        Csv,
    ),
    (
        "/insight/team/export",
        "How each team responded over a period, as CSV",
        "start_time*:ts end_time*:ts team_ids:[int] channel_ids:[int] responder_ids:[int] severities:[str] incident_ids:[str] query:str labels:obj fields:obj is_my_team:bool time_zone:str seconds_to_ack_from:int seconds_to_ack_to:int seconds_to_close_from:int seconds_to_close_to:int orderby:str asc:bool split_hours:bool aggregate_unit:hour|day|week|month export_fields:[str]",
        Csv,
    ),
    (
        "/insight/channel/export",
        "How each channel responded over a period, as CSV",
        "start_time*:ts end_time*:ts team_ids:[int] channel_ids:[int] responder_ids:[int] severities:[str] incident_ids:[str] query:str labels:obj fields:obj is_my_team:bool time_zone:str seconds_to_ack_from:int seconds_to_ack_to:int seconds_to_close_from:int seconds_to_close_to:int orderby:str asc:bool split_hours:bool aggregate_unit:hour|day|week|month export_fields:[str]",
        Csv,
    ),
    (
        "/insight/responder/export",
        "How each responder responded over a period, as CSV",
        "start_time*:ts end_time*:ts team_ids:[int] channel_ids:[int] responder_ids:[int] severities:[str] incident_ids:[str] query:str labels:obj fields:obj is_my_team:bool time_zone:str seconds_to_ack_from:int seconds_to_ack_to:int seconds_to_close_from:int seconds_to_close_to:int orderby:str asc:bool export_fields:[str]",
        Csv,
    ),
    // Custom fields (openapi-compat.md 2.2).
    (
        "/field/list",
        "List custom fields",
        "query:str creator_id:int orderby:created_at|updated_at asc:bool",
        List,
    ),
    (
        "/field/info",
        "One custom field",
        "field_id:oid field_name:str",
        Object,
    ),
    (
        "/field/create",
        "Create a custom field",
        "field_name*:str display_name*:str field_type*:text|single_select|multi_select|checkbox value_type:string|bool description:str options:[str] default_value:any",
        Object,
    ),
    (
        "/field/update",
        "Change a custom field",
        "field_id*:oid field_name:str display_name:str field_type:str description:str options:[str] default_value:any",
        Nothing,
    ),
    (
        "/field/delete",
        "Delete a custom field",
        "field_id*:oid",
        Nothing,
    ),
    // Schedules (openapi-compat.md 2.8).
    (
        "/schedule/list",
        "List schedules",
        "p:int limit:int team_ids:[int] is_my_team:bool is_my_manage:bool query:str start:ts end:ts",
        List,
    ),
    (
        "/schedule/info",
        "One schedule with its shifts",
        "schedule_id*:id start:ts end:ts",
        Object,
    ),
    (
        "/schedule/infos",
        "Several schedules",
        "schedule_ids*:[int] start:ts end:ts",
        List,
    ),
    (
        "/schedule/create",
        "Create a schedule",
        "schedule_name*:str description:str team_id:int time_zone:str layers:[obj] notify:obj",
        Object,
    ),
    (
        "/schedule/update",
        "Change a schedule",
        "schedule_id*:id schedule_name:str description:str team_id:int time_zone:str layers:[obj] notify:obj",
        Object,
    ),
    (
        "/schedule/delete",
        "Delete schedules",
        "schedule_ids*:[int]",
        Nothing,
    ),
    (
        "/schedule/preview",
        "Preview a schedule's shifts",
        "schedule_id:int start:ts end:ts schedule_name:str description:str team_id:int time_zone:str layers:[obj]",
        Object,
    ),
    (
        "/schedule/self",
        "The caller's upcoming shifts",
        "start:ts",
        Any,
    ),
    (
        "/schedule/feed/reset",
        "Replace a schedule's calendar feed link",
        "schedule_id*:id",
        Object,
    ),
    (
        "/schedule/self/feed/reset",
        "Replace the caller's calendar feed link",
        "",
        Object,
    ),
    // Notification templates (openapi-compat.md 2.11).
    (
        "/template/list",
        "List notification templates",
        "query:str team_ids:[int] creator_id:int orderby:created_at|updated_at asc:bool p:int limit:int",
        List,
    ),
    (
        "/template/info",
        "One notification template",
        "template_id*:str",
        Object,
    ),
    (
        "/template/create",
        "Create a notification template",
        "template_name*:str description:str team_id:int status:str",
        Object,
    ),
    (
        "/template/update",
        "Change a notification template",
        "template_id*:str template_name:str description:str team_id:int status:str",
        Nothing,
    ),
    (
        "/template/delete",
        "Delete a notification template",
        "template_id*:str",
        Nothing,
    ),
    (
        "/template/preview",
        "Render a template for an incident",
        "template_id:str incident_id:oid channel:str content:str",
        Object,
    ),
    // Service calendars.
    (
        "/calendar/list",
        "List service calendars",
        "p:int limit:int query:str team_ids:[int] cal_ids:[str]",
        List,
    ),
    (
        "/calendar/info",
        "One service calendar",
        "cal_id*:str start_date:str end_date:str",
        Object,
    ),
    (
        "/calendar/create",
        "Create a service calendar",
        "cal_name*:str description:str team_id:int timezone:str workdays:[int] extra_cal_ids:[str]",
        Object,
    ),
    (
        "/calendar/update",
        "Change a service calendar",
        "cal_id*:str cal_name:str description:str team_id:int timezone:str workdays:[int] extra_cal_ids:[str]",
        Nothing,
    ),
    (
        "/calendar/delete",
        "Delete a service calendar",
        "cal_id*:str",
        Nothing,
    ),
    (
        "/calendar/event/list",
        "A calendar's days off and on",
        "cal_id*:str start_date:str end_date:str",
        List,
    ),
    (
        "/calendar/event/upsert",
        "Add or change calendar days",
        "cal_id*:str events*:[obj]",
        Nothing,
    ),
    (
        "/calendar/event/delete",
        "Remove calendar days",
        "cal_id*:str dates*:[str]",
        Nothing,
    ),
    (
        "/calendar/holiday/import",
        "Import a holiday list",
        "name*:str entries*:[obj]",
        Object,
    ),
    ("/calendar/holiday/list", "Imported holiday lists", "", List),
    (
        "/calendar/holiday/delete",
        "Delete a holiday list",
        "cal_id*:str",
        Nothing,
    ),
    // Audit log (openapi-compat.md 2.15).
    (
        "/audit/search",
        "Search the audit log",
        "start_time*:ts end_time*:ts limit:int operations:[str] person_id:int request_id:str is_dangerous:bool is_write:bool search_after_ctx:str",
        Object,
    ),
    ("/audit/operation/list", "Every audited operation", "", Any),
    // Outbound webhooks.
    (
        "/webhook/create",
        "Create an outbound webhook",
        "name*:str endpoint*:str kind:str event_types:[str] channel_ids:[int] team_id:int status:str headers:obj custom_body:str value_mapping:obj",
        Object,
    ),
    (
        "/webhook/update",
        "Change an outbound webhook",
        "integration_id*:id name:str endpoint:str kind:str event_types:[str] channel_ids:[int] team_id:int status:str headers:obj custom_body:str value_mapping:obj",
        Nothing,
    ),
    (
        "/webhook/delete",
        "Delete an outbound webhook",
        "integration_id*:id",
        Nothing,
    ),
    ("/webhook/list", "List outbound webhooks", "kind:str", List),
    (
        "/webhook/info",
        "One outbound webhook",
        "integration_id*:id",
        Object,
    ),
    (
        "/webhook/history/list",
        "A webhook's deliveries",
        "integration_id:int limit:int status:str event_types:csv ref_id:str search_after_ctx:str",
        List,
    ),
    (
        "/webhook/history/detail",
        "One delivery",
        "history_id*:str",
        Object,
    ),
    // Custom actions and links (response.md 1.19, 1.20).
    (
        "/custom-action/create",
        "Create a custom action",
        "name*:str endpoint*:str channel_ids*:[int] team_id:int status:enabled|disabled headers:obj custom_body:str value_mapping:obj",
        Object,
    ),
    (
        "/custom-action/update",
        "Change a custom action",
        "integration_id*:id name:str endpoint:str channel_ids:[int] team_id:int status:enabled|disabled headers:obj custom_body:str value_mapping:obj",
        Object,
    ),
    (
        "/custom-action/delete",
        "Delete a custom action",
        "integration_id*:id",
        Nothing,
    ),
    (
        "/custom-action/list",
        "List custom actions, by name",
        "channel_id:int",
        List,
    ),
    (
        "/custom-action/info",
        "One custom action",
        "integration_id*:id",
        Object,
    ),
    (
        "/link/create",
        "Create a link",
        "name*:str url_template*:str open_mode:popup|new_tab channel_ids:[int] team_id:int status:enabled|disabled",
        Object,
    ),
    (
        "/link/update",
        "Change a link",
        "integration_id*:id name:str url_template:str open_mode:popup|new_tab channel_ids:[int] team_id:int status:enabled|disabled",
        Object,
    ),
    (
        "/link/delete",
        "Delete a link",
        "integration_id*:id",
        Nothing,
    ),
    ("/link/list", "List links, by name", "channel_id:int", List),
    ("/link/info", "One link", "integration_id*:id", Object),
    (
        "/incident/custom-action/do",
        "Run a custom action on an incident",
        "incident_id*:str integration_id*:id",
        Object,
    ),
    // Ticket sync (response.md 1.23, RSP-405…407).
    (
        "/ticket-sync/create",
        "Create a Jira, ServiceNow or ServiceDesk Plus ticket sync",
        "system*:jira|servicenow|servicedeskplus name:str channel_ids:[int] team_id:int direction:to|from|two_way trigger:auto|manual filters:any platform:cloud|server|onprem base_url:str username:str secret:str project_key:str issue_type:str template:str requester:str priority_source:str assignee_label:str assignee_kind:technician|group assignee_mapping:obj client_id:str auth_url:str redirect_uri:str oauth_code:str severity_mapping:obj field_mapping:any status:enabled|disabled",
        Object,
    ),
    (
        "/ticket-sync/update",
        "Change a ticket sync",
        "integration_id*:id name:str channel_ids:[int] team_id:int direction:to|from|two_way trigger:auto|manual filters:any platform:cloud|server|onprem base_url:str username:str secret:str project_key:str issue_type:str template:str requester:str priority_source:str assignee_label:str assignee_kind:technician|group assignee_mapping:obj client_id:str auth_url:str redirect_uri:str oauth_code:str severity_mapping:obj field_mapping:any status:enabled|disabled",
        Object,
    ),
    (
        "/ticket-sync/delete",
        "Delete a ticket sync",
        "integration_id*:id",
        Nothing,
    ),
    (
        "/ticket-sync/list",
        "List ticket syncs, by name",
        "channel_id:int",
        List,
    ),
    (
        "/ticket-sync/info",
        "One ticket sync",
        "integration_id*:id",
        Object,
    ),
    (
        "/ticket-sync/log/list",
        "A ticket sync's log, newest first",
        "integration_id*:id incident_id:str limit:int search_after_ctx:str",
        List,
    ),
    (
        "/incident/ticket-sync/do",
        "Sync an incident to a ticket system now",
        "incident_id*:str integration_id*:id",
        Object,
    ),
    // IM integrations.
    (
        "/im/integration/create",
        "Create an IM integration",
        "type*:slack|feishu|wecom|teams name*:str bot_token:str signing_secret:str app_id:str app_secret:str verification_token:str encrypt_key:str corp_id:str agent_id:str secret:str token:str encoding_aes_key:str app_password:str tenant_id:str api_base:str status:enabled|disabled war_room_enabled:bool",
        Object,
    ),
    (
        "/im/integration/list",
        "List IM integrations",
        "type:str",
        List,
    ),
    (
        "/im/integration/info",
        "One IM integration",
        "integration_id*:id",
        Object,
    ),
    (
        "/im/integration/delete",
        "Delete an IM integration",
        "integration_id*:id",
        Nothing,
    ),
    (
        "/im/person/link",
        "Link a member to an IM identity",
        "integration_id*:id person_id*:id im_user_id*:str",
        Object,
    ),
    (
        "/im/person/unlink",
        "Unlink a member's IM identity",
        "integration_id*:id person_id:int",
        Nothing,
    ),
    (
        "/im/person/list",
        "An IM integration's linked members",
        "integration_id*:id",
        List,
    ),
    (
        "/im/person/link_code",
        "A one-time code that links the caller's Teams account",
        "integration_id*:id",
        Object,
    ),
    (
        "/im/person/link_by_phone",
        "Link a member to the DingTalk user with their verified phone",
        "integration_id*:id person_id*:id",
        Object,
    ),
    // War rooms (response.md §2.25).
    (
        "/incident/war-room/create",
        "Create the incident's war room on the IM platform",
        "incident_id*:oid",
        Object,
    ),
    (
        "/incident/war-room/list",
        "War rooms, newest first",
        "incident_id:oid status:active|dissolved",
        List,
    ),
    (
        "/incident/war-room/detail",
        "The incident's war room with its members",
        "incident_id*:oid",
        Object,
    ),
    (
        "/incident/war-room/delete",
        "Dissolve the war room of a Closed incident",
        "incident_id*:oid",
        Object,
    ),
    (
        "/incident/war-room/add-member",
        "Invite members into the incident's war room",
        "incident_id*:oid member_ids*:[id]",
        Object,
    ),
    (
        "/incident/war-room/default-observers",
        "Read or replace the members invited to every war room",
        "member_ids:[id]",
        Object,
    ),
    (
        "/datasource/im/war-room-enabled/list",
        "The IM integration war rooms are created on",
        "",
        List,
    ),
    (
        "/datasource/im/war-room-enabled/set",
        "Turn war rooms on or off for an IM integration",
        "integration_id*:id war_room_enabled*:bool",
        Object,
    ),
    (
        "/datasource/im/person/try-link",
        "Link members to IM users found by e-mail or phone",
        "integration_id:id person_ids*:[id]",
        Object,
    ),
];

/// The operation of `path`.
pub fn operation(path: &str) -> Option<&'static Operation> {
    OPERATIONS.iter().find(|(p, ..)| *p == path)
}

/// The JSON schema of one field type of the notation; `None` for a type it does not know.
fn field_type(ty: &str) -> Option<Value> {
    if let Some(inner) = ty.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
        return Some(json!({ "type": "array", "items": field_type(inner)? }));
    }
    if ty.contains('|') {
        return Some(json!({ "type": "string", "enum": ty.split('|').collect::<Vec<_>>() }));
    }
    if let Some(max) = ty.strip_prefix("str").and_then(|n| n.parse::<u64>().ok()) {
        return Some(json!({ "type": "string", "maxLength": max }));
    }
    Some(match ty {
        "int" => json!({ "type": "integer", "format": "int64" }),
        "id" => json!({ "type": "integer", "format": "int64", "minimum": 1 }),
        "ts" => json!({ "type": "integer", "format": "int64", "description": "Unix seconds" }),
        "str" => json!({ "type": "string" }),
        "oid" => json!({ "type": "string", "pattern": "^[0-9a-f]{24}$" }),
        "num" => json!({ "type": "string", "pattern": "^[0-9A-F]{6}$" }),
        "bool" => json!({ "type": "boolean" }),
        "obj" => json!({ "type": "object" }),
        "labels" => json!({ "type": "object", "additionalProperties": { "type": "string" } }),
        "csv" => json!({
            "oneOf": [
                { "type": "string", "description": "comma-separated values" },
                { "type": "array", "items": { "type": "string" } }
            ]
        }),
        "any" => json!({}),
        _ => return None,
    })
}

/// The request-body schema of a field notation (see [`OPERATIONS`]). Unknown members are
/// allowed (openapi-compat.md 1.3).
pub fn body_schema(notation: &str) -> Value {
    let mut properties = Map::new();
    let mut required = Vec::new();
    for token in notation.split_whitespace() {
        if token == "@paging" {
            for (name, schema) in body_schema(PAGING)["properties"]
                .as_object()
                .into_iter()
                .flatten()
            {
                properties.insert(name.clone(), schema.clone());
            }
            continue;
        }
        let (name, ty) = token.split_once(':').unwrap_or((token, "any"));
        let name = match name.strip_suffix('*') {
            Some(n) => {
                required.push(Value::String(n.to_string()));
                n
            }
            None => name,
        };
        properties.insert(
            name.to_string(),
            field_type(ty).unwrap_or_else(|| json!({})),
        );
    }
    let mut schema = json!({ "type": "object", "properties": properties });
    if !required.is_empty() {
        schema["required"] = Value::Array(required);
    }
    schema
}

fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

/// The schema of `data` for a [`Data`].
fn data_schema(data: Data) -> Option<Value> {
    match data {
        Nothing | Csv => None,
        Any => Some(json!({})),
        Object => Some(json!({ "type": "object" })),
        List => Some(schema_ref("Page")),
        ListOf(item) => Some(json!({
            "allOf": [
                schema_ref("Page"),
                { "type": "object", "properties": { "items": { "type": "array", "items": schema_ref(item) } } }
            ]
        })),
        Schema(name) => Some(schema_ref(name)),
    }
}

/// The answer of a success whose `data` is `data`: a shared component for the common
/// shapes, spelled out for the others.
fn success_ref(data: Data) -> Value {
    let name = match data {
        Nothing => "Done",
        Any => "AnyData",
        Object => "ObjectData",
        List => "PageData",
        _ => return success_response(data),
    };
    json!({ "$ref": format!("#/components/responses/{name}") })
}

/// The envelope of a success whose `data` is `data` (openapi-compat.md 1.4).
fn success_response(data: Data) -> Value {
    if let Csv = data {
        return json!({
            "description": "The file, as CSV (not the envelope)",
            "headers": request_id_header(),
            "content": { "text/csv": { "schema": { "type": "string" } } }
        });
    }
    let mut properties = Map::new();
    properties.insert("request_id".into(), json!({ "type": "string" }));
    let mut required = vec![json!("request_id")];
    match data_schema(data) {
        Some(schema) => {
            properties.insert("data".into(), schema);
            required.push(json!("data"));
        }
        None => {
            properties.insert("data".into(), json!({ "type": "null" }));
        }
    }
    json!({
        "description": "Success (always HTTP 200)",
        "headers": request_id_header(),
        "content": { "application/json": { "schema": {
            "type": "object",
            "required": required,
            "properties": properties,
            "not": { "required": ["error"] }
        } } }
    })
}

fn request_id_header() -> Value {
    json!({ "Flashcat-Request-Id": { "$ref": "#/components/headers/RequestId" } })
}

/// A plain-text answer of the pages outside the Open API (feeds, downloads).
fn plain_text(description: &str) -> Value {
    json!({ "description": description, "content": { "text/plain": { "schema": { "type": "string" } } } })
}

fn failure_ref() -> Value {
    json!({ "$ref": "#/components/responses/Failure" })
}

/// One `POST` operation of the Open API.
fn open_api_operation(path: &str, summary: &str, notation: &str, data: Data) -> Value {
    let tag = path
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or("")
        .to_string();
    json!({
        "post": {
            "operationId": operation_id(path),
            "summary": summary,
            "tags": [tag],
            "security": [{ "AppKeyAuth": [] }, { "BearerAuth": [] }],
            "requestBody": {
                "required": false,
                "description": "A JSON object; an empty body reads as `{}`, unknown members are ignored, and absent, null, 0, \"\" and false mean the same",
                "content": { "application/json": { "schema": body_schema(notation) } }
            },
            "responses": {
                "200": success_ref(data),
                "4XX": failure_ref()
            }
        }
    })
}

/// `/incident/list` → `incident.list`.
fn operation_id(path: &str) -> String {
    path.trim_start_matches('/').replace('/', ".")
}

/// The paths outside the Open API: push intake, health, the calendar feeds and the export
/// download.
fn other_paths(paths: &mut Map<String, Value>) {
    let push_failure = json!({ "$ref": "#/components/responses/Failure" });
    let key = json!({ "IntegrationKeyAuth": [] });
    paths.insert(
        "/event/push/alert/{source}".into(),
        json!({ "post": {
            "operationId": "event.push.alert",
            "summary": "Push alert events (Event API, ingest.md §3)",
            "tags": ["event"],
            "security": [key],
            "parameters": [{
                "name": "source", "in": "path", "required": true,
                "schema": { "type": "string", "enum": crate::push::STANDARD_FAMILY }
            }],
            "requestBody": {
                "required": true,
                "content": { "application/json": { "schema": schema_ref("StandardEvent") } }
            },
            "responses": {
                "200": success_response(Object),
                "4XX": push_failure.clone()
            }
        } }),
    );
    paths.insert(
        "/event/push/change/standard".into(),
        json!({ "post": {
            "operationId": "event.push.change",
            "summary": "Push change events (Event API, ingest.md §4)",
            "tags": ["event"],
            "security": [key],
            "requestBody": {
                "required": true,
                "content": { "application/json": { "schema": schema_ref("StandardChange") } }
            },
            "responses": {
                "200": success_response(Any),
                "4XX": push_failure
            }
        } }),
    );
    for (path, summary) in [
        ("/healthz", "The process answers"),
        ("/readyz", "The database answers"),
        ("/metrics", "Prometheus metrics"),
    ] {
        let mut responses = json!({
            "200": { "description": summary, "content": { "text/plain": { "schema": { "type": "string" } } } }
        });
        if path == "/readyz" {
            responses["503"] = json!({ "description": "The database does not answer", "content": { "text/plain": { "schema": { "type": "string" } } } });
        }
        paths.insert(
            path.into(),
            json!({ "get": {
                "operationId": path.trim_start_matches('/'),
                "summary": summary,
                "tags": ["health"],
                "security": [],
                "responses": responses
            } }),
        );
    }
    paths.insert(
        "/openapi.json".into(),
        json!({ "get": {
            "operationId": "openapi",
            "summary": "This document",
            "tags": ["health"],
            "security": [],
            "responses": { "200": {
                "description": "The OpenAPI 3.1 document",
                "content": { "application/json": { "schema": { "type": "object" } } }
            } }
        } }),
    );
    for (path, id, summary) in [
        (
            "/calendar/schedule/{token}",
            "calendar.schedule.feed",
            "A schedule's shifts as an iCalendar feed",
        ),
        (
            "/calendar/member/{token}",
            "calendar.member.feed",
            "A member's shifts as an iCalendar feed",
        ),
    ] {
        paths.insert(
            path.into(),
            json!({ "get": {
                "operationId": id,
                "summary": summary,
                "tags": ["calendar"],
                "security": [],
                "parameters": [{ "name": "token", "in": "path", "required": true, "description": "The secret feed token of the link", "schema": { "type": "string" } }],
                "responses": {
                    "200": { "description": "The feed", "content": { "text/calendar": { "schema": { "type": "string" } } } },
                    "404": plain_text("No feed has this token (or its link was replaced)")
                }
            } }),
        );
    }
    paths.insert(
        "/account/export/download/{token}".into(),
        json!({ "get": {
            "operationId": "account.export.download",
            "summary": "Download a finished export",
            "tags": ["account"],
            "security": [],
            "parameters": [{ "name": "token", "in": "path", "required": true, "description": "The secret download token of the export", "schema": { "type": "string" } }],
            "responses": {
                "200": { "description": "The export archive", "content": { "application/octet-stream": { "schema": { "type": "string", "format": "binary" } } } },
                "404": plain_text("No export has this token, or its link expired")
            }
        } }),
    );
}

fn components() -> Value {
    let codes: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    let int = json!({ "type": "integer" });
    let string = json!({ "type": "string" });
    let labels = json!({ "type": "object", "additionalProperties": { "type": "string" } });
    let severity = json!({ "type": "string", "enum": ["Critical", "Warning", "Info"] });
    json!({
        "securitySchemes": {
            "AppKeyAuth": { "type": "apiKey", "in": "query", "name": "app_key", "description": "An APP key; acts as the member who created it (openapi-compat.md 1.2)" },
            "BearerAuth": { "type": "http", "scheme": "bearer", "description": "The same APP key as `Authorization: Bearer <key>`, the preferred form (it stays out of access logs)" },
            "IntegrationKeyAuth": { "type": "apiKey", "in": "query", "name": "integration_key", "description": "The push key of an inbound integration" }
        },
        "headers": {
            "RequestId": { "description": "The envelope's request_id", "required": true, "schema": { "type": "string" } }
        },
        "responses": {
            "Done": success_response(Nothing),
            "AnyData": success_response(Any),
            "ObjectData": success_response(Object),
            "PageData": success_response(List),
            "Failure": {
                "description": "A refusal: the error code says why (openapi-compat.md 1.5)",
                "headers": request_id_header(),
                "content": { "application/json": { "schema": schema_ref("Failure") } }
            }
        },
        "schemas": {
            "ErrorCode": { "type": "string", "enum": codes },
            "Failure": {
                "type": "object",
                "required": ["request_id", "error"],
                "properties": {
                    "request_id": string,
                    "error": {
                        "type": "object",
                        "required": ["code", "message"],
                        "properties": {
                            "code": schema_ref("ErrorCode"),
                            "message": string,
                            "reason": { "type": "string", "description": "Why the tenant's service state refused the call (service-agreement.md SVC-023)" }
                        }
                    }
                }
            },
            "Page": {
                "type": "object",
                "required": ["items"],
                "properties": {
                    "items": { "type": "array" },
                    "total": int,
                    "has_next_page": { "type": "boolean" },
                    "search_after_ctx": string,
                    "p": int,
                    "limit": int
                }
            },
            "Account": {
                "type": "object",
                "required": ["account_id", "account_name", "locale", "time_zone", "created_at"],
                "properties": {
                    "account_id": int, "account_name": string, "email": string, "domain": string,
                    "locale": string, "time_zone": string, "incident_retention_days": int, "created_at": int
                }
            },
            "Member": {
                "type": "object",
                "required": ["member_id", "person_id", "member_name", "email", "status", "account_role_ids"],
                "properties": {
                    "member_id": int, "person_id": int, "member_name": string, "email": string,
                    "status": string, "account_id": int, "account_name": string,
                    "account_role_ids": { "type": "array", "items": int },
                    "is_account_owner": { "type": "boolean" },
                    "locale": string, "time_zone": string, "created_at": int, "updated_at": int
                }
            },
            "Person": {
                "type": "object",
                "required": ["person_id"],
                "properties": { "person_id": int, "person_name": string, "email": string }
            },
            "Team": {
                "type": "object",
                "required": ["team_id", "team_name"],
                "properties": {
                    "team_id": int, "team_name": string, "description": string,
                    "person_ids": { "type": "array", "items": int },
                    "created_at": int, "updated_at": int
                }
            },
            "Channel": {
                "type": "object",
                "required": ["channel_id", "channel_name", "status"],
                "properties": {
                    "channel_id": int, "channel_name": string, "description": string,
                    "account_id": int, "team_id": int,
                    "managing_team_ids": { "type": "array", "items": int },
                    "creator_id": int, "status": string, "auto_resolve_timeout": int,
                    "auto_resolve_mode": string, "disable_auto_close": { "type": "boolean" },
                    "group": { "type": "object" }, "flapping": { "type": "object" },
                    "is_private": { "type": "boolean" }, "created_at": int, "updated_at": int
                }
            },
            "Incident": {
                "type": "object",
                "required": ["incident_id", "num", "title", "incident_severity", "incident_status", "progress", "start_time", "channel_id"],
                "properties": {
                    "incident_id": { "type": "string", "pattern": "^[0-9a-f]{24}$" },
                    "num": { "type": "string", "pattern": "^[0-9A-F]{6}$" },
                    "detail_url": string, "account_id": int, "channel_id": int, "channel_name": string,
                    "title": string, "description": string, "impact": string, "root_cause": string,
                    "resolution": string, "ai_summary": string,
                    "incident_severity": severity,
                    "incident_status": { "type": "string", "enum": ["Critical", "Warning", "Info", "Ok"] },
                    "progress": { "type": "string", "enum": ["Triggered", "Processing", "Closed"] },
                    "start_time": int, "last_time": int, "end_time": int, "ack_time": int,
                    "close_time": int, "snoozed_before": int, "created_at": int, "updated_at": int,
                    "creator_id": int, "closer_id": int, "owner_id": int,
                    "responders": { "type": "array", "items": { "type": "object" } },
                    "assigned_to": { "type": ["object", "null"] },
                    "next_escalate_time": int,
                    "labels": labels, "fields": { "type": "object" },
                    "dedup_key": string, "equals_md5": string, "group_method": string,
                    "ever_muted": { "type": "boolean" }, "is_flapping": { "type": "boolean" },
                    "alert_cnt": int, "active_alert_cnt": int, "alert_event_cnt": int,
                    "integration_id": int, "integration_ids": { "type": "array", "items": int },
                    "integration_type": string, "images": { "type": "array" }
                }
            },
            "Alert": {
                "type": "object",
                "required": ["alert_id", "alert_key", "title", "alert_severity", "alert_status", "start_time"],
                "properties": {
                    "alert_id": { "type": "string", "pattern": "^[0-9a-f]{24}$" },
                    "alert_key": string, "account_id": int, "title": string, "title_rule": string,
                    "description": string, "alert_severity": severity,
                    "alert_status": { "type": "string", "enum": ["Critical", "Warning", "Info", "Ok"] },
                    "start_time": int, "last_time": int, "end_time": int, "created_at": int,
                    "updated_at": int, "labels": labels, "images": { "type": "array" },
                    "event_cnt": int, "ever_muted": { "type": "boolean" }, "mark": string,
                    "closed": { "type": "boolean" }, "close_time": int, "resolved_by": string,
                    "channel_id": int, "channel_name": string, "integration_id": int,
                    "integration_name": string, "integration_type": string, "incident_id": string,
                    "incident": { "type": ["object", "null"] }
                }
            },
            "AlertEvent": {
                "type": "object",
                "required": ["event_id", "alert_id", "event_status", "event_time"],
                "properties": {
                    "event_id": string, "alert_id": string, "alert_key": string,
                    "event_status": { "type": "string", "enum": ["Critical", "Warning", "Info", "Ok"] },
                    "event_severity": string, "event_time": int, "received_at": int,
                    "title": string, "title_rule": string, "description": string, "labels": labels,
                    "images": { "type": "array" }, "integration_id": int, "integration_type": string,
                    "channel_id": int, "request_id": string
                }
            },
            "FeedEntry": {
                "type": "object",
                "required": ["incident_id", "type", "created_at"],
                "properties": {
                    "entry_id": {}, "incident_id": string, "type": string, "ref_id": string,
                    "creator_id": int, "detail": {}, "created_at": int, "updated_at": int
                }
            },
            "AlertFeedEntry": {
                "type": "object",
                "required": ["alert_id", "type", "created_at"],
                "properties": {
                    "entry_id": string, "alert_id": string,
                    "type": { "type": "string", "enum": ["a_new", "a_update", "a_merge", "a_close"] },
                    "ref_id": string, "creator_id": int, "detail": {}, "created_at": int,
                    "updated_at": int
                }
            },
            "Created": {
                "type": "object",
                "required": ["incident_id", "title"],
                "properties": { "incident_id": { "type": "string", "pattern": "^[0-9a-f]{24}$" }, "title": string }
            },
            "Batch": {
                "type": "object",
                "required": ["items"],
                "description": "One outcome per incident of the request, in its order",
                "properties": {
                    "items": { "type": "array", "items": {
                        "type": "object",
                        "required": ["incident_id", "ok"],
                        "properties": {
                            "incident_id": string,
                            "ok": { "type": "boolean" },
                            "error": { "type": "object", "properties": { "code": schema_ref("ErrorCode"), "message": string } }
                        }
                    } }
                }
            },
            "StandardEvent": {
                "type": "object",
                "required": ["event_status"],
                "properties": {
                    "event_status": { "type": "string", "enum": ["Critical", "Warning", "Info", "Ok"] },
                    "title_rule": string, "title": string, "alert_key": string,
                    "description": string, "labels": labels,
                    "event_time": { "type": "integer", "description": "Unix seconds (or milliseconds)" },
                    "images": { "type": "array", "items": { "type": "object", "properties": { "src": string, "alt": string, "href": string } } }
                }
            },
            "StandardChange": {
                "type": "object",
                "required": ["title", "change_status"],
                "properties": {
                    "title": string, "description": string, "change_key": { "type": "string", "maxLength": 255 },
                    "change_status": { "type": "string", "enum": ["Planned", "Ready", "Processing", "Canceled", "Done"] },
                    "link": string, "labels": labels,
                    "start_time": int, "end_time": int
                }
            }
        }
    })
}

/// The whole document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for path in super::served_paths() {
        let op = match operation(path) {
            Some((p, summary, notation, data)) => open_api_operation(p, summary, notation, *data),
            // Not documented yet: the envelope and an open body, so the document still lists
            // it (the test `every_served_path_is_documented` insists on a real entry).
            None => open_api_operation(path, "", "", Any),
        };
        paths.insert(path.to_string(), op);
    }
    other_paths(&mut paths);
    let mut sorted: Vec<(String, Value)> = paths.into_iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Klaxon Open API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Flashduty-compatible Open API of Klaxon (docs/open-api.md). Every operation is a POST with a JSON body; the answer is the envelope {request_id, data} on success (HTTP 200) or {request_id, error: {code, message}} on failure."
        },
        "security": [{ "AppKeyAuth": [] }, { "BearerAuth": [] }],
        "paths": Value::Object(sorted.into_iter().collect()),
        "components": components()
    })
}

/// The document as committed in `docs/openapi.json`: pretty-printed, ending in a newline.
pub fn rendered() -> String {
    let mut text = serde_json::to_string_pretty(&document()).unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn every_served_path_is_documented() {
        // Issue 8: the document covers every endpoint; a path added to a module's PATHS
        // without an entry here fails.
        let mut seen = HashSet::new();
        for (path, summary, ..) in OPERATIONS {
            assert!(seen.insert(*path), "{path} is documented twice");
            assert!(!summary.is_empty(), "{path} has no summary");
        }
        for path in super::super::served_paths() {
            assert!(
                operation(path).is_some(),
                "{path} is served but has no entry in openapi/document.rs OPERATIONS"
            );
        }
        for (path, ..) in OPERATIONS {
            assert!(
                super::super::served_paths().any(|p| p == *path),
                "{path} is documented but not served"
            );
        }
        let doc = document();
        for path in super::super::served_paths() {
            assert!(
                doc["paths"][path]["post"].is_object(),
                "{path} is missing from the document"
            );
        }
    }

    #[test]
    fn every_field_notation_uses_known_types() {
        for (path, _, notation, _) in OPERATIONS {
            for token in notation.split_whitespace().filter(|t| *t != "@paging") {
                let (name, ty) = token
                    .split_once(':')
                    .unwrap_or_else(|| panic!("{path}: {token:?} has no type"));
                assert!(!name.trim_end_matches('*').is_empty(), "{path}: {token:?}");
                assert!(
                    field_type(ty).is_some(),
                    "{path}: unknown type {ty:?} in {token:?}"
                );
            }
        }
    }

    /// Every `$ref` of `v`, depth first.
    fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
        match v {
            Value::Object(map) => {
                for (k, child) in map {
                    match (k.as_str(), child) {
                        ("$ref", Value::String(r)) => out.push(r),
                        _ => refs(child, out),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|i| refs(i, out)),
            _ => {}
        }
    }

    /// The value a local `$ref` (`#/a/b`) points at.
    fn resolve<'a>(doc: &'a Value, reference: &str) -> Option<&'a Value> {
        let pointer = reference.strip_prefix('#')?;
        doc.pointer(pointer)
    }

    #[test]
    fn document_is_structurally_valid_openapi_3_1() {
        let doc = document();
        assert_eq!(doc["openapi"], "3.1.0");
        assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
        // Every `$ref` resolves inside the document.
        let mut all = Vec::new();
        refs(&doc, &mut all);
        assert!(!all.is_empty());
        for r in all {
            assert!(resolve(&doc, r).is_some(), "{r} does not resolve");
        }
        // Every security requirement names a declared scheme.
        let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
        let paths = doc["paths"].as_object().unwrap();
        let mut operation_ids = HashSet::new();
        for (path, item) in paths {
            assert!(path.starts_with('/'), "{path}");
            let ops = item.as_object().unwrap();
            assert!(
                ops.keys().any(|m| m == "get" || m == "post"),
                "{path} has no GET or POST operation"
            );
            for (method, op) in ops {
                assert!(
                    ["get", "post"].contains(&method.as_str()),
                    "{path}: {method}"
                );
                let id = op["operationId"].as_str().unwrap();
                assert!(operation_ids.insert(id.to_string()), "{id} is not unique");
                let responses = op["responses"].as_object().unwrap();
                assert!(
                    responses.contains_key("200"),
                    "{path} {method} has no 200 response"
                );
                for (status, response) in responses {
                    assert!(
                        status.len() == 3
                            && (status.parse::<u16>().is_ok() || status.ends_with("XX")),
                        "{path}: bad status key {status}"
                    );
                    let response = match response.get("$ref").and_then(Value::as_str) {
                        Some(r) => resolve(&doc, r).unwrap(),
                        None => response,
                    };
                    assert!(
                        response["description"].is_string(),
                        "{path} {status} has no description"
                    );
                }
                for requirement in op["security"].as_array().unwrap() {
                    for name in requirement.as_object().unwrap().keys() {
                        assert!(schemes.contains_key(name), "{path}: unknown scheme {name}");
                    }
                }
                // Path templates and path parameters match.
                let templated: HashSet<&str> = path
                    .split('/')
                    .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
                    .collect();
                let declared: HashSet<&str> = op["parameters"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|p| p["in"] == "path")
                    .map(|p| {
                        assert_eq!(p["required"], true, "{path}: path parameters are required");
                        p["name"].as_str().unwrap()
                    })
                    .collect();
                assert_eq!(templated, declared, "{path}: path parameters");
                // A request body's `required` members are all declared properties.
                if let Some(schema) = op
                    .pointer("/requestBody/content/application~1json/schema")
                    .filter(|s| s.get("$ref").is_none())
                {
                    for name in schema["required"].as_array().into_iter().flatten() {
                        let name = name.as_str().unwrap();
                        assert!(
                            schema["properties"].get(name).is_some(),
                            "{path}: required {name} is not a property"
                        );
                    }
                }
            }
        }
        // Every Open API operation answers with the envelope and the error codes of
        // klaxon_core's one table.
        let codes = doc["components"]["schemas"]["ErrorCode"]["enum"]
            .as_array()
            .unwrap();
        assert_eq!(codes.len(), ErrorCode::ALL.len());
    }

    #[test]
    fn committed_document_is_up_to_date() {
        // Issue 8: CI checks the committed document against the code.
        let file = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");
        let generated = rendered();
        if std::env::var("KLAXON_BLESS").as_deref() == Ok("1") {
            std::fs::write(file, &generated).unwrap();
            return;
        }
        let committed = std::fs::read_to_string(file).unwrap_or_default();
        assert!(
            committed == generated,
            "docs/openapi.json is out of date with the code; regenerate it with \
             `cargo run -p klaxon -- openapi > docs/openapi.json` (or run this test with \
             KLAXON_BLESS=1) and commit the result"
        );
    }
}
