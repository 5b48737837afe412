//! The reference catalogue of the exported tables, and the renumbering of a transfer package
//! imported into another region (service-agreement.md SVC-215; docs/saas.md "Cross-region
//! transfers").
//!
//! Every region numbers its rows from 1, so a package exported at one region's deployment
//! reuses ids that the tenants of another region already hold. The import therefore gives
//! every imported row that has a numbered identity a fresh id of this database, and rewrites
//! every reference to it with the old → new map of its id space:
//!
//! - [`IDENTITIES`]: the identity column(s) of each exported table and the id space they
//!   number (all kinds of integration share one space, as they do when they are created);
//! - [`REFERENCES`]: every column that holds another row's id, whatever its shape (an integer,
//!   a JSON list stored as text, a `,1,2,` list);
//! - [`DOCUMENTS`]: the JSON documents stored as text that carry ids inside (escalation
//!   targets, routing rules, timeline details, schedule layers, …), with the member names
//!   that hold them;
//! - [`KEPT`]: the `*_id` columns that are not renumbered, and why (24-hex object ids, which
//!   are time-ordered and random and so the same in every region; ids of external systems).
//!
//! A test reads the live schema of both backends and fails when an exported table has a
//! `*_id` / `*_ids` column or an identity that this catalogue does not declare
//! ([`crate::Store::undeclared_id_columns`]).
//!
//! A reference to an id that is not in the package (a row deleted for good at the source, an
//! API key, which is a secret and never exported, an operator record of the source region) is
//! not left pointing at whatever row holds that number here, which could be another tenant's:
//! a single reference becomes 0 (the schema's "none"), and the id is dropped from a list.
//! Built-in ids ([`Identity::builtin_up_to`]: the built-in roles) and 0 are the same
//! everywhere and are kept.

use std::collections::{BTreeSet, HashMap};

use serde_json::{Map, Value};
use sqlx::AnyConnection;

use crate::db::{Sql, is_sqlite};
use crate::export::{TABLES, TableClass};
use crate::rows::{get_i64, get_str};
use crate::{Result, Store, StoreError};

/// How an identity gets its fresh id on import.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alloc {
    /// The account id: given by the import itself (above every account id ever used here).
    Account,
    /// A database identity (PostgreSQL: the column's sequence; SQLite: `INTEGER PRIMARY
    /// KEY`, after the table's largest id and its AUTOINCREMENT mark).
    Sequence,
    /// A random 13-digit id in the shared integration id space: kept when no integration of
    /// this region holds it (webhook, IM and custom-action addresses stay as configured),
    /// drawn again otherwise.
    Drawn,
}

/// The identity column of a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    pub table: &'static str,
    pub column: &'static str,
    /// The id space: references name it.
    pub space: &'static str,
    pub alloc: Alloc,
    /// Ids up to this are built in (the same in every deployment, never rows): kept.
    pub builtin_up_to: i64,
}

const fn seq(table: &'static str, column: &'static str, space: &'static str) -> Identity {
    Identity {
        table,
        column,
        space,
        alloc: Alloc::Sequence,
        builtin_up_to: 0,
    }
}

const fn drawn(table: &'static str) -> Identity {
    Identity {
        table,
        column: "integration_id",
        space: INTEGRATION,
        alloc: Alloc::Drawn,
        builtin_up_to: 0,
    }
}

const ACCOUNT: &str = "account";
const MEMBER: &str = "member";
const TEAM: &str = "team";
const ROLE: &str = "role";
const CHANNEL: &str = "channel";
const INTEGRATION: &str = "integration";
const SCHEDULE: &str = "schedule";
const WEBHOOK_DELIVERY: &str = "webhook_delivery";
/// API keys are secrets: never in a package, so a reference to one always becomes 0.
const APP_KEY: &str = "app_key";
/// The source region's register of lawful requests: an operator record, never in a package.
const LAWFUL_REQUEST: &str = "lawful_request";

/// Every identity of the exported tables.
pub const IDENTITIES: &[Identity] = &[
    Identity {
        table: "accounts",
        column: "account_id",
        space: ACCOUNT,
        alloc: Alloc::Account,
        builtin_up_to: 0,
    },
    seq("members", "member_id", MEMBER),
    seq("teams", "team_id", TEAM),
    // Custom roles start at 101: 1 … 100 are the built-in roles (migration 0017).
    Identity {
        table: "roles",
        column: "role_id",
        space: ROLE,
        alloc: Alloc::Sequence,
        builtin_up_to: 100,
    },
    seq("channels", "channel_id", CHANNEL),
    seq("integrations", "integration_id", INTEGRATION),
    drawn("webhook_integrations"),
    drawn("custom_integrations"),
    drawn("im_integrations"),
    drawn("ticket_sync_integrations"),
    seq("schedules", "schedule_id", SCHEDULE),
    seq("push_devices", "device_id", "push_device"),
    seq("webhook_deliveries", "seq", WEBHOOK_DELIVERY),
    // Sequences nothing refers to: renumbered so they follow this database's order.
    seq("pull_history", "seq", "pull_history"),
    seq("ticket_sync_jobs", "seq", "ticket_sync_job"),
    seq("incident_timeline", "seq", "timeline_entry"),
    seq("notifications", "seq", "notification"),
    seq("webhook_attempts", "seq", "webhook_attempt"),
    seq("audit_log", "seq", "audit_entry"),
];

/// How a reference column holds its id(s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// One integer id.
    Int,
    /// A JSON array of integer ids stored as text (`[1,2]`).
    JsonList,
    /// Ids wrapped in commas (`,1,2,`, or empty), searched with `LIKE` (RSP-503).
    CommaList,
}

/// A column holding ids of `space`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reference {
    pub table: &'static str,
    pub column: &'static str,
    pub space: &'static str,
    pub shape: Shape,
}

const fn int(table: &'static str, column: &'static str, space: &'static str) -> Reference {
    Reference {
        table,
        column,
        space,
        shape: Shape::Int,
    }
}

const fn list(table: &'static str, column: &'static str, space: &'static str) -> Reference {
    Reference {
        table,
        column,
        space,
        shape: Shape::JsonList,
    }
}

/// Every column of the exported tables that refers to another row's id (`account_id`, which
/// every row carries, is set by the import itself).
pub const REFERENCES: &[Reference] = &[
    int("alert_pipelines", "integration_id", INTEGRATION),
    int("alert_pipelines", "creator_id", MEMBER),
    int("alert_pipelines", "updated_by", MEMBER),
    int("alerts", "channel_id", CHANNEL),
    int("alerts", "integration_id", INTEGRATION),
    int("audit_log", "member_id", MEMBER),
    int("audit_log", "app_key_id", APP_KEY),
    int("audit_log", "lawful_request_id", LAWFUL_REQUEST),
    int("calendars", "team_id", TEAM),
    int("change_events", "integration_id", INTEGRATION),
    int("change_heads", "integration_id", INTEGRATION),
    int("changes", "integration_id", INTEGRATION),
    int("channel_rules", "channel_id", CHANNEL),
    int("channels", "team_id", TEAM),
    int("channels", "creator_id", MEMBER),
    list("channels", "managing_team_ids", TEAM),
    list("custom_integrations", "channel_ids", CHANNEL),
    int("custom_integrations", "team_id", TEAM),
    int("custom_integrations", "creator_id", MEMBER),
    int("custom_integrations", "updated_by", MEMBER),
    int("enrichment_rules", "integration_id", INTEGRATION),
    int("enrichment_rules", "updated_by", MEMBER),
    int("escalation_rules", "channel_id", CHANNEL),
    int("event_outcomes", "channel_id", CHANNEL),
    int("event_outcomes", "integration_id", INTEGRATION),
    int("events", "channel_id", CHANNEL),
    int("events", "integration_id", INTEGRATION),
    int("im_card_codes", "integration_id", INTEGRATION),
    int("im_conversations", "integration_id", INTEGRATION),
    int("im_integrations", "creator_id", MEMBER),
    int("im_link_codes", "integration_id", INTEGRATION),
    int("im_link_codes", "member_id", MEMBER),
    int("im_links", "integration_id", INTEGRATION),
    int("im_links", "member_id", MEMBER),
    int("im_unavailable_chats", "integration_id", INTEGRATION),
    int("incident_timeline", "creator_id", MEMBER),
    int("incidents", "channel_id", CHANNEL),
    int("incidents", "creator_id", MEMBER),
    int("incidents", "closer_id", MEMBER),
    int("incidents", "integration_id", INTEGRATION),
    Reference {
        table: "incidents",
        column: "responder_ids",
        space: MEMBER,
        shape: Shape::CommaList,
    },
    Reference {
        table: "incidents",
        column: "acker_ids",
        space: MEMBER,
        shape: Shape::CommaList,
    },
    int("integrations", "channel_id", CHANNEL),
    int("mapping_schemas", "team_id", TEAM),
    int("mapping_schemas", "creator_id", MEMBER),
    int("mapping_services", "team_id", TEAM),
    int("mapping_services", "creator_id", MEMBER),
    int("member_list_columns", "member_id", MEMBER),
    int("member_insight_filters", "member_id", MEMBER),
    int("member_preferences", "member_id", MEMBER),
    int("push_devices", "member_id", MEMBER),
    list("members", "role_ids", ROLE),
    int("notifications", "person_id", MEMBER),
    int("pull_history", "integration_id", INTEGRATION),
    int("roles", "creator_id", MEMBER),
    int("route_versions", "integration_id", INTEGRATION),
    list("route_versions", "default_channel_ids", CHANNEL),
    int("route_versions", "updated_by", MEMBER),
    int("schedules", "team_id", TEAM),
    list("sso_configs", "default_role_ids", ROLE),
    int("team_members", "team_id", TEAM),
    int("team_members", "member_id", MEMBER),
    int("teams", "creator_id", MEMBER),
    int("teams", "updated_by", MEMBER),
    int("ticket_sync_integrations", "team_id", TEAM),
    list("ticket_sync_integrations", "channel_ids", CHANNEL),
    int("ticket_sync_integrations", "creator_id", MEMBER),
    int("ticket_sync_integrations", "updated_by", MEMBER),
    int("ticket_sync_jobs", "integration_id", INTEGRATION),
    int("ticket_sync_jobs", "person_id", MEMBER),
    int("ticket_sync_links", "integration_id", INTEGRATION),
    int("ticket_sync_tokens", "integration_id", INTEGRATION),
    int("war_room_members", "member_id", MEMBER),
    int("war_room_observers", "member_id", MEMBER),
    int("war_rooms", "integration_id", INTEGRATION),
    int("war_rooms", "created_by", MEMBER),
    int("webhook_attempts", "integration_id", INTEGRATION),
    int("webhook_attempts", "delivery_seq", WEBHOOK_DELIVERY),
    int("webhook_deliveries", "integration_id", INTEGRATION),
    int("webhook_deliveries", "person_id", MEMBER),
    list("webhook_integrations", "channel_ids", CHANNEL),
    int("webhook_integrations", "team_id", TEAM),
    int("webhook_integrations", "creator_id", MEMBER),
    int("webhook_integrations", "updated_by", MEMBER),
];

/// The members of a JSON document that hold ids, wherever they are nested: a number, or an
/// array of numbers, of the named space. Only numbers are rewritten (labels and names are
/// text, never taken for ids).
const COMMON_KEYS: &[(&str, &str)] = &[
    ("person_id", MEMBER),
    ("person_ids", MEMBER),
    ("member_id", MEMBER),
    ("member_ids", MEMBER),
    ("creator_id", MEMBER),
    ("created_by", MEMBER),
    ("updated_by", MEMBER),
    ("closer_id", MEMBER),
    ("team_id", TEAM),
    ("team_ids", TEAM),
    ("managing_team_ids", TEAM),
    ("channel_id", CHANNEL),
    ("channel_ids", CHANNEL),
    ("default_channel_ids", CHANNEL),
    ("integration_id", INTEGRATION),
    ("integration_ids", INTEGRATION),
    ("schedule_id", SCHEDULE),
    ("schedule_ids", SCHEDULE),
];

/// Objects whose member NAMES are schedule ids (`schedule_to_role_ids`: schedule → on-call
/// roles; the on-call role ids 1 and 2 are built in and stay).
const SCHEDULE_KEYED: &[&str] = &["schedule_to_role_ids"];

/// A JSON document stored as text in `table.column`, with the member names holding ids
/// beyond [`COMMON_KEYS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Document {
    pub table: &'static str,
    pub column: &'static str,
    pub extra_keys: &'static [(&'static str, &'static str)],
}

const fn doc(table: &'static str, column: &'static str) -> Document {
    Document {
        table,
        column,
        extra_keys: &[],
    }
}

/// The JSON documents that carry ids inside. Left as written at the source: the audit log's
/// request bodies and the bodies of webhook attempts already sent (records of what happened
/// there), raw events and labels (the sender's data).
pub const DOCUMENTS: &[Document] = &[
    doc("escalation_rules", "definition"),
    doc("channel_rules", "definition"),
    doc("route_versions", "rules"),
    doc("route_versions", "sections"),
    doc("schedules", "definition"),
    doc("calendars", "definition"),
    doc("alert_pipelines", "rules"),
    doc("enrichment_rules", "rules"),
    doc("notification_templates", "definition"),
    doc("custom_fields", "definition"),
    doc("integrations", "settings"),
    doc("member_preferences", "preference"),
    doc("ticket_sync_integrations", "filters"),
    doc("ticket_sync_integrations", "settings"),
    doc("ticket_sync_integrations", "field_mapping"),
    doc("ticket_sync_jobs", "payload"),
    doc("incidents", "response"),
    Document {
        table: "incident_timeline",
        column: "detail",
        // An assignment's `to` and a merge's `source_responders` list members (RSP-110).
        extra_keys: &[("to", MEMBER), ("source_responders", MEMBER)],
    },
    doc("webhook_deliveries", "snapshot"),
    doc("webhook_deliveries", "body"),
];

/// `*_id` columns of the exported tables that are not renumbered, and why.
pub const KEPT: &[(&str, &str, &str)] = &[
    ("alerts", "alert_id", OBJECT_ID),
    ("alerts", "incident_id", OBJECT_ID),
    ("alerts", "mark_rule_id", OBJECT_ID),
    ("audit_log", "request_id", REQUEST_ID),
    ("audit_log", "resource_id", AUDIT),
    ("calendars", "cal_id", OBJECT_ID),
    ("change_events", "event_id", OBJECT_ID),
    ("change_events", "change_id", OBJECT_ID),
    ("change_heads", "change_id", OBJECT_ID),
    ("changes", "change_id", OBJECT_ID),
    ("channel_rules", "rule_id", OBJECT_ID),
    ("custom_fields", "field_id", OBJECT_ID),
    ("escalation_rules", "rule_id", OBJECT_ID),
    ("event_outcomes", "outcome_id", OBJECT_ID),
    ("event_outcomes", "request_id", REQUEST_ID),
    ("event_outcomes", "rule_id", OBJECT_ID),
    ("event_outcomes", "source_incident_id", OBJECT_ID),
    ("event_outcomes", "event_id", OBJECT_ID),
    ("event_outcomes", "alert_id", OBJECT_ID),
    ("event_outcomes", "incident_id", OBJECT_ID),
    ("events", "event_id", OBJECT_ID),
    ("events", "request_id", REQUEST_ID),
    ("events", "alert_id", OBJECT_ID),
    ("holiday_sets", "set_id", OBJECT_ID),
    ("im_card_codes", "task_id", EXTERNAL),
    ("im_card_codes", "incident_id", OBJECT_ID),
    ("im_card_codes", "im_user_id", EXTERNAL),
    ("im_conversations", "conversation_id", EXTERNAL),
    ("im_conversations", "im_user_id", EXTERNAL),
    ("im_integrations", "app_id", EXTERNAL),
    ("im_integrations", "agent_id", EXTERNAL),
    ("im_integrations", "tenant_id", EXTERNAL),
    ("im_integrations", "corp_id", EXTERNAL),
    ("im_links", "im_user_id", EXTERNAL),
    ("im_unavailable_chats", "chat_id", EXTERNAL),
    ("incident_timeline", "entry_id", OBJECT_ID),
    ("incident_timeline", "incident_id", OBJECT_ID),
    ("incident_timeline", "ref_id", OBJECT_ID),
    ("incidents", "incident_id", OBJECT_ID),
    ("incidents", "first_alert_id", OBJECT_ID),
    ("mapping_rows", "schema_id", OBJECT_ID),
    ("mapping_schemas", "schema_id", OBJECT_ID),
    ("mapping_services", "service_id", OBJECT_ID),
    ("members", "ref_id", EXTERNAL),
    ("notification_templates", "template_id", OBJECT_ID),
    ("notifications", "incident_id", OBJECT_ID),
    ("notifications", "firing_id", OBJECT_ID),
    ("notifications", "escalate_rule_id", OBJECT_ID),
    ("notifications", "provider_message_id", EXTERNAL),
    ("teams", "ref_id", EXTERNAL),
    ("ticket_sync_jobs", "incident_id", OBJECT_ID),
    ("ticket_sync_links", "incident_id", OBJECT_ID),
    ("ticket_sync_links", "external_id", EXTERNAL),
    ("war_room_members", "room_id", OBJECT_ID),
    ("war_room_members", "im_user_id", EXTERNAL),
    ("war_rooms", "room_id", OBJECT_ID),
    ("war_rooms", "incident_id", OBJECT_ID),
    ("war_rooms", "chat_id", EXTERNAL),
    ("webhook_attempts", "attempt_id", OBJECT_ID),
    ("webhook_attempts", "event_id", OBJECT_ID),
    ("webhook_attempts", "ref_id", OBJECT_ID),
    ("webhook_deliveries", "event_id", OBJECT_ID),
    ("webhook_deliveries", "subject_id", OBJECT_ID),
];

const OBJECT_ID: &str = "24-hex (or hex) object id, time-ordered and random: the same in every region; \
     a clash refuses the import";
const REQUEST_ID: &str = "32-hex request id of the call that wrote the row";
const EXTERNAL: &str = "an id of an external system (IM platform, ticket system, directory)";
const AUDIT: &str = "the object an audited call named, as recorded at the source";

/// The old → new id of every imported identity, per id space.
#[derive(Debug, Default, Clone)]
pub(crate) struct IdMaps {
    maps: HashMap<&'static str, HashMap<i64, i64>>,
    builtin: HashMap<&'static str, i64>,
}

impl IdMaps {
    /// The new id of `old` in `space`: built-in ids and 0 (or less: "none") stay; an id
    /// the package does not hold becomes `None` (see the module documentation).
    fn get(&self, space: &str, old: i64) -> Option<i64> {
        if old <= self.builtin.get(space).copied().unwrap_or(0) {
            return Some(old);
        }
        self.maps.get(space).and_then(|m| m.get(&old)).copied()
    }

    /// One reference: an id that is not in the package becomes 0.
    fn one(&self, space: &str, old: i64) -> i64 {
        self.get(space, old).unwrap_or(0)
    }

    /// A list: ids that are not in the package are dropped.
    fn many(&self, space: &str, old: impl IntoIterator<Item = i64>) -> Vec<i64> {
        old.into_iter()
            .filter_map(|id| self.get(space, id))
            .collect()
    }
}

fn bad(message: String) -> StoreError {
    StoreError::Corrupt(format!("package: {message}"))
}

fn as_id(table: &str, column: &str, v: &Value) -> Result<Option<i64>> {
    match v {
        Value::Null => Ok(None),
        Value::Number(n) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| bad(format!("{table}.{column}: {v} is not an id"))),
        Value::String(s) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| bad(format!("{table}.{column}: {v} is not an id"))),
        _ => Err(bad(format!("{table}.{column}: {v} is not an id"))),
    }
}

/// Allocates a fresh id for every row of the package that has an identity, inside the
/// import's transaction, and returns the maps. `account` is the new tenant's account id.
pub(crate) async fn allocate(
    conn: &mut AnyConnection,
    tables: &[(&str, &[Map<String, Value>])],
    source_account: i64,
    account: i64,
) -> Result<IdMaps> {
    let mut out = IdMaps::default();
    for identity in IDENTITIES {
        out.builtin.insert(identity.space, identity.builtin_up_to);
    }
    out.maps
        .entry(ACCOUNT)
        .or_default()
        .insert(source_account, account);
    // Drawn integration ids already given in this import (not yet written).
    let mut drawn_here = BTreeSet::new();
    for identity in IDENTITIES {
        let Some((_, rows)) = tables.iter().find(|(t, _)| *t == identity.table) else {
            continue;
        };
        let mut old = BTreeSet::new();
        for row in rows.iter() {
            let id = row
                .get(identity.column)
                .map(|v| as_id(identity.table, identity.column, v))
                .transpose()?
                .flatten()
                .ok_or_else(|| {
                    bad(format!(
                        "a row of {} has no {}",
                        identity.table, identity.column
                    ))
                })?;
            if !old.insert(id) {
                return Err(bad(format!(
                    "{}.{} {id} appears twice",
                    identity.table, identity.column
                )));
            }
        }
        let map = out.maps.entry(identity.space).or_default();
        match identity.alloc {
            Alloc::Account => {}
            Alloc::Sequence => {
                let fresh = reserve(conn, identity, old.len()).await?;
                for (o, n) in old.iter().zip(fresh) {
                    if map.insert(*o, n).is_some() {
                        return Err(bad(format!(
                            "{} id {o} is held by two rows",
                            identity.space
                        )));
                    }
                }
            }
            Alloc::Drawn => {
                for o in &old {
                    let taken = drawn_here.contains(o)
                        || map.values().any(|n| n == o)
                        || crate::webhooks::id_taken(conn, *o).await?;
                    let n = if taken {
                        let mut n = crate::webhooks::draw_integration_id(conn).await?;
                        while drawn_here.contains(&n) || map.values().any(|v| *v == n) {
                            n = crate::webhooks::draw_integration_id(conn).await?;
                        }
                        n
                    } else {
                        *o
                    };
                    drawn_here.insert(n);
                    if map.insert(*o, n).is_some() {
                        return Err(bad(format!(
                            "{} id {o} is held by two rows",
                            identity.space
                        )));
                    }
                }
            }
        }
    }
    Ok(out)
}

/// `n` fresh ids of an identity, ascending (so renumbered rows keep their order).
async fn reserve(conn: &mut AnyConnection, identity: &Identity, n: usize) -> Result<Vec<i64>> {
    if n == 0 {
        return Ok(Vec::new());
    }
    let (table, column) = (identity.table, identity.column);
    // `table` and `column` come from IDENTITIES, never from input.
    if is_sqlite(conn) {
        let text = format!("SELECT COALESCE(MAX({column}), 0) AS n FROM {table}");
        let row = Sql::new(&text).query_on(conn).fetch_one(&mut *conn).await?;
        let mut last = get_i64(&row, "n")?.max(identity.builtin_up_to);
        let mut mark = Sql::new("SELECT seq AS n FROM sqlite_sequence WHERE name = ");
        mark.bind(table);
        if let Some(row) = mark.query_on(conn).fetch_optional(&mut *conn).await? {
            last = last.max(get_i64(&row, "n")?);
        }
        // The rows are written in this transaction (one writer): nothing else takes these.
        Ok((1..=n as i64).map(|i| last + i).collect())
    } else {
        let text = format!(
            "SELECT nextval(pg_get_serial_sequence('{table}', '{column}')) AS n \
             FROM generate_series(1, {n})"
        );
        let rows = Sql::new(&text).query_on(conn).fetch_all(&mut *conn).await?;
        let mut ids = rows
            .iter()
            .map(|r| get_i64(r, "n"))
            .collect::<Result<Vec<_>>>()?;
        ids.sort_unstable();
        Ok(ids)
    }
}

/// The rows of `table` with every identity and reference renumbered by `maps`.
pub(crate) fn renumber(
    table: &str,
    rows: &[Map<String, Value>],
    maps: &IdMaps,
) -> Result<Vec<Map<String, Value>>> {
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let mut row = row.clone();
        for identity in IDENTITIES.iter().filter(|i| i.table == table) {
            if identity.alloc == Alloc::Account {
                continue;
            }
            if let Some(v) = row.get_mut(identity.column)
                && let Some(old) = as_id(table, identity.column, v)?
            {
                let new = maps.get(identity.space, old).ok_or_else(|| {
                    bad(format!(
                        "{table}.{} {old} was given no new id",
                        identity.column
                    ))
                })?;
                *v = Value::from(new);
            }
        }
        for r in REFERENCES.iter().filter(|r| r.table == table) {
            let Some(v) = row.get_mut(r.column) else {
                continue;
            };
            match r.shape {
                Shape::Int => {
                    if let Some(old) = as_id(table, r.column, v)? {
                        *v = Value::from(maps.one(r.space, old));
                    }
                }
                Shape::JsonList => {
                    let Value::String(text) = v else {
                        continue;
                    };
                    if text.trim().is_empty() {
                        continue;
                    }
                    let ids: Vec<i64> = serde_json::from_str(text).map_err(|e| {
                        bad(format!("{table}.{}: not a list of ids ({e})", r.column))
                    })?;
                    let new = maps.many(r.space, ids.iter().copied());
                    if new != ids {
                        *v = Value::String(Value::from(new).to_string());
                    }
                }
                Shape::CommaList => {
                    let Value::String(text) = v else {
                        continue;
                    };
                    let ids = text
                        .split(',')
                        .filter(|s| !s.is_empty())
                        .map(|s| {
                            s.trim().parse::<i64>().map_err(|_| {
                                bad(format!("{table}.{}: {s:?} is not an id", r.column))
                            })
                        })
                        .collect::<Result<Vec<_>>>()?;
                    let new = maps.many(r.space, ids.iter().copied());
                    if new != ids {
                        *v = Value::String(crate::rows::id_list(new.into_iter()));
                    }
                }
            }
        }
        for d in DOCUMENTS.iter().filter(|d| d.table == table) {
            let Some(Value::String(text)) = row.get_mut(d.column) else {
                continue;
            };
            if text.trim().is_empty() {
                continue;
            }
            // A webhook body rendered from a custom template need not be JSON: then it holds
            // no ids this catalogue could name, and is kept as it is.
            let Ok(mut document) = serde_json::from_str::<Value>(text) else {
                continue;
            };
            if rewrite(&mut document, d.extra_keys, maps) {
                *text = document.to_string();
            }
        }
        out.push(row);
    }
    Ok(out)
}

fn space_of(key: &str, extra: &[(&str, &'static str)]) -> Option<&'static str> {
    COMMON_KEYS
        .iter()
        .chain(extra)
        .find(|(k, _)| *k == key)
        .map(|(_, s)| *s)
}

/// Rewrites the ids held in `value` (recursively); true when anything changed.
fn rewrite(value: &mut Value, extra: &[(&str, &'static str)], maps: &IdMaps) -> bool {
    let mut changed = false;
    match value {
        Value::Object(object) => {
            for (key, v) in object.iter_mut() {
                if SCHEDULE_KEYED.contains(&key.as_str()) {
                    if let Value::Object(by_schedule) = v {
                        let mut renamed = Map::new();
                        for (k, roles) in std::mem::take(by_schedule) {
                            match k.parse::<i64>() {
                                Ok(old) => {
                                    let Some(new) = maps.get(SCHEDULE, old) else {
                                        changed = true;
                                        continue;
                                    };
                                    changed |= new != old;
                                    renamed.insert(new.to_string(), roles);
                                }
                                Err(_) => {
                                    renamed.insert(k, roles);
                                }
                            }
                        }
                        *by_schedule = renamed;
                    }
                    continue;
                }
                if let Some(space) = space_of(key, extra) {
                    match v {
                        Value::Number(n) => {
                            if let Some(old) = n.as_i64() {
                                let new = maps.one(space, old);
                                if new != old {
                                    *v = Value::from(new);
                                    changed = true;
                                }
                            }
                            continue;
                        }
                        Value::Array(items) if items.iter().all(|i| i.as_i64().is_some()) => {
                            let old: Vec<i64> = items.iter().filter_map(Value::as_i64).collect();
                            let new = maps.many(space, old.iter().copied());
                            if new != old {
                                *items = new.into_iter().map(Value::from).collect();
                                changed = true;
                            }
                            continue;
                        }
                        _ => {}
                    }
                }
                changed |= rewrite(v, extra, maps);
            }
        }
        Value::Array(items) => {
            for item in items {
                changed |= rewrite(item, extra, maps);
            }
        }
        _ => {}
    }
    changed
}

impl Store {
    /// SVC-215 guard: the `*_id` / `*_ids` columns and identities of the exported tables in
    /// the live schema that the reference catalogue ([`IDENTITIES`], [`REFERENCES`],
    /// [`KEPT`]) does not declare, and the catalogue's entries the schema does not have.
    /// Must stay empty: a new reference column the import does not renumber would point at
    /// another tenant's rows after a cross-region transfer.
    pub async fn undeclared_id_columns(&self) -> Result<Vec<String>> {
        let mut conn = self.inner.read.acquire().await?;
        let mut out = Vec::new();
        let sqlite = is_sqlite(&conn);
        for (table, class) in TABLES {
            if !matches!(class, TableClass::Exported { .. }) {
                continue;
            }
            let columns = crate::purge::columns_of(&mut conn, table).await?;
            let identities: Vec<String> = if sqlite {
                let rows = Sql::new(&format!(
                    "SELECT name FROM pragma_table_info('{table}') WHERE pk = 1 \
                     AND upper(type) = 'INTEGER' AND (SELECT COUNT(*) FROM \
                     pragma_table_info('{table}') WHERE pk > 0) = 1"
                ))
                .query_on(&conn)
                .fetch_all(&mut *conn)
                .await?;
                rows.iter()
                    .map(|r| get_str(r, "name"))
                    .collect::<Result<_>>()?
            } else {
                let mut sql = Sql::new(
                    "SELECT CAST(column_name AS TEXT) AS name FROM information_schema.columns \
                     WHERE table_schema = current_schema() AND (is_identity = 'YES' OR \
                     column_default LIKE 'nextval%') AND table_name = ",
                );
                sql.bind(*table);
                let rows = sql.query_on(&conn).fetch_all(&mut *conn).await?;
                rows.iter()
                    .map(|r| get_str(r, "name"))
                    .collect::<Result<_>>()?
            };
            for column in &identities {
                let declared = IDENTITIES
                    .iter()
                    .any(|i| i.table == *table && i.column == column && i.alloc != Alloc::Drawn);
                if !declared {
                    out.push(format!("{table}.{column} (an identity)"));
                }
            }
            for column in columns.keys() {
                if column == "account_id" || !(column.ends_with("_id") || column.ends_with("_ids"))
                {
                    continue;
                }
                let declared = IDENTITIES
                    .iter()
                    .any(|i| i.table == *table && i.column == column)
                    || REFERENCES
                        .iter()
                        .any(|r| r.table == *table && r.column == column)
                    || KEPT.iter().any(|(t, c, _)| t == table && c == column);
                if !declared {
                    out.push(format!("{table}.{column}"));
                }
            }
            let named = IDENTITIES
                .iter()
                .map(|i| (i.table, i.column))
                .chain(REFERENCES.iter().map(|r| (r.table, r.column)))
                .chain(DOCUMENTS.iter().map(|d| (d.table, d.column)))
                .chain(KEPT.iter().map(|(t, c, _)| (*t, *c)));
            for (t, c) in named {
                if t == *table && !columns.contains_key(c) {
                    out.push(format!("{t}.{c} (declared, not in the schema)"));
                }
            }
        }
        for (t, c) in IDENTITIES
            .iter()
            .map(|i| (i.table, i.column))
            .chain(REFERENCES.iter().map(|r| (r.table, r.column)))
            .chain(DOCUMENTS.iter().map(|d| (d.table, d.column)))
            .chain(KEPT.iter().map(|(t, c, _)| (*t, *c)))
        {
            let exported = TABLES
                .iter()
                .any(|(name, class)| *name == t && matches!(class, TableClass::Exported { .. }));
            if !exported {
                out.push(format!("{t}.{c} (declared, not an exported table)"));
            }
        }
        out.sort();
        out.dedup();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    // Test code: a failed unwrap is a failed test.
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::*;
    use serde_json::json;

    fn maps() -> IdMaps {
        let mut m = IdMaps::default();
        m.builtin.insert(ROLE, 100);
        m.maps.insert(MEMBER, HashMap::from([(1, 11), (2, 12)]));
        m.maps.insert(SCHEDULE, HashMap::from([(3, 13)]));
        m.maps.insert(TEAM, HashMap::from([(4, 14)]));
        m.maps.insert(ROLE, HashMap::from([(101, 105)]));
        m
    }

    // spec: SVC-215
    #[test]
    fn documents_lists_and_columns_follow_the_maps() {
        let m = maps();
        let mut d = json!({"levels": [{"target": {"person_ids": [1, 9, 2], "team_ids": [4],
            "schedule_to_role_ids": {"3": [1, 2]}}, "title": "channel_id"}],
            "labels": {"person_id": "1"}, "creator_id": 9});
        assert!(rewrite(&mut d, &[], &m));
        assert_eq!(
            d,
            json!({"levels": [{"target": {"person_ids": [11, 12], "team_ids": [14],
                "schedule_to_role_ids": {"13": [1, 2]}}, "title": "channel_id"}],
                "labels": {"person_id": "1"}, "creator_id": 0})
        );
        let row = json!({"member_id": 2, "role_ids": "[1,101,102]", "account_id": 5});
        let Value::Object(row) = row else { panic!() };
        let out = renumber("members", &[row], &m).unwrap();
        assert_eq!(out[0]["member_id"], 12);
        assert_eq!(out[0]["role_ids"], "[1,105]");
        let row = json!({"incident_id": "x", "responder_ids": ",1,7,2,", "acker_ids": ""});
        let Value::Object(row) = row else { panic!() };
        let out = renumber("incidents", &[row], &m).unwrap();
        assert_eq!(out[0]["responder_ids"], ",11,12,");
        assert_eq!(out[0]["acker_ids"], "");
    }
}
