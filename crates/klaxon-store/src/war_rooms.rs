//! War rooms (response.md 1.22, RSP-430…438; migration 0084; docs/war-rooms.md).
//!
//! - **Platform first, record second.** The server creates and disbands the chat on the IM
//!   platform outside any transaction, then records the result here: [`Store::record_war_room`]
//!   re-checks the preconditions under the incident lock (RSP-022, RSP-430) and writes the
//!   room, its members and `i_wr_create` in one transaction.
//! - **Sync is decided with the change.** [`enqueue`] runs inside the transaction that writes an
//!   incident change (`response::write_changes`): when the incident has an active room whose
//!   integration still has `war_room_enabled` (RSP-438), the change queues one outbox row
//!   (`fire_type = war_room`) that invites the responders not yet in the room (RSP-433) and
//!   posts the state change (RSP-434). The delivery worker sends it with the same claims,
//!   retries and restarts as every notification. Comments queue nothing (RSP-434).

use std::collections::{BTreeSet, HashMap};

use klaxon_core::ids::IdSource;
use klaxon_core::model::{Incident, Millis, Progress};
use klaxon_core::response::TimelineEntry;
use serde_json::{Value, json};
use sqlx::AnyConnection;

use crate::db::Sql;
use crate::process::RandomIds;
use crate::response::{Change, insert_timeline, load_incident, lock_incidents};
use crate::rows::{get_i64, get_str};
use crate::{Result, Store};

/// The outbox `fire_type` (and `reason`, and `channel`) of a war-room sync row.
pub const WAR_ROOM_SYNC: &str = "war_room";

/// The timeline kinds whose change is posted to an active war room (RSP-434).
pub(crate) const STATE_KINDS: [&str; 8] = [
    "i_ack",
    "i_unack",
    "i_snooze",
    "i_wake",
    "i_rslv",
    "i_reopen",
    "i_assign",
    "i_r_severity",
];

/// A war room (response.md 1.22).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WarRoom {
    pub room_id: String,
    pub account_id: i64,
    pub incident_id: String,
    pub integration_id: i64,
    pub plugin_type: String,
    pub chat_id: String,
    pub chat_name: String,
    pub share_link: String,
    /// The platform's reference to the incident card posted in the chat.
    pub card_ref: String,
    /// `active` | `dissolved`.
    pub status: String,
    pub created_by: i64,
    pub created_at: Millis,
    pub dissolved_at: Millis,
}

impl WarRoom {
    pub fn is_active(&self) -> bool {
        self.status == "active"
    }
}

/// Why a war-room record was refused (nothing was written).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WarRoomRefusal {
    IncidentNotFound,
    /// RSP-022 / RSP-430: the incident is Closed (creation), or not Closed (dissolving).
    Closed,
    NotClosed,
    /// RSP-430: the incident already has an active war room.
    AlreadyActive,
    /// There is no active war room to dissolve.
    NoActiveRoom,
}

const COLUMNS: &str = "room_id, account_id, incident_id, integration_id, plugin_type, chat_id, \
     chat_name, share_link, card_ref, status, created_by, created_at, dissolved_at";

fn room_row(row: &sqlx::any::AnyRow) -> Result<WarRoom> {
    Ok(WarRoom {
        room_id: get_str(row, "room_id")?,
        account_id: get_i64(row, "account_id")?,
        incident_id: get_str(row, "incident_id")?,
        integration_id: get_i64(row, "integration_id")?,
        plugin_type: get_str(row, "plugin_type")?,
        chat_id: get_str(row, "chat_id")?,
        chat_name: get_str(row, "chat_name")?,
        share_link: get_str(row, "share_link")?,
        card_ref: get_str(row, "card_ref")?,
        status: get_str(row, "status")?,
        created_by: get_i64(row, "created_by")?,
        created_at: get_i64(row, "created_at")?,
        dissolved_at: get_i64(row, "dissolved_at")?,
    })
}

async fn active_room(
    conn: &mut AnyConnection,
    account_id: i64,
    incident_id: &str,
) -> Result<Option<WarRoom>> {
    let mut sql = Sql::new("SELECT ");
    sql.push(COLUMNS)
        .push(" FROM war_rooms WHERE account_id = ")
        .bind(account_id)
        .push(" AND incident_id = ")
        .bind(incident_id)
        .push(" AND status = 'active'");
    sql.query_on(conn)
        .fetch_optional(&mut *conn)
        .await?
        .as_ref()
        .map(room_row)
        .transpose()
}

async fn insert_members(
    conn: &mut AnyConnection,
    room: &WarRoom,
    members: &[(i64, String)],
    now: Millis,
) -> Result<()> {
    for (member_id, im_user_id) in members {
        let mut sql = Sql::new(
            "INSERT INTO war_room_members (room_id, account_id, member_id, im_user_id, \
             created_at) VALUES (",
        );
        sql.bind(room.room_id.as_str())
            .push(", ")
            .bind(room.account_id)
            .push(", ")
            .bind(*member_id)
            .push(", ")
            .bind(im_user_id.as_str())
            .push(", ")
            .bind(now)
            .push(
                ") ON CONFLICT (room_id, member_id) DO UPDATE SET im_user_id = \
                 excluded.im_user_id",
            );
        sql.query_on(conn).execute(&mut *conn).await?;
    }
    Ok(())
}

/// The `i_wr_create` / `i_wr_delete` detail (response.md 1.10).
fn entry_detail(room: &WarRoom, integration_name: &str) -> Value {
    json!({
        "integration_id": room.integration_id,
        "integration_name": integration_name,
        "chat_id": room.chat_id,
        "chat_name": room.chat_name,
        "plugin_type": room.plugin_type,
        "share_link": room.share_link,
    })
}

async fn write_entry(
    conn: &mut AnyConnection,
    inc: &Incident,
    kind: &'static str,
    creator_id: i64,
    detail: Value,
    now: Millis,
) -> Result<()> {
    let entry = TimelineEntry {
        entry_id: RandomIds.object_id(now),
        incident_id: inc.incident_id.clone(),
        ref_id: inc.incident_id.clone(),
        kind,
        creator_id,
        created_at: now,
        detail,
    };
    insert_timeline(conn, &[(inc.account_id, &entry)]).await
}

/// What [`Store::record_war_room`] stores besides the room itself.
#[derive(Debug, Clone, Default)]
pub struct WarRoomInvitations {
    /// Members invited, with their IM user ids.
    pub invited: Vec<(i64, String)>,
    /// RSP-432: members who could not be resolved on the platform.
    pub uninvited: Vec<i64>,
}

impl Store {
    /// The account's active war room of an incident.
    pub async fn active_war_room(
        &self,
        account_id: i64,
        incident_id: &str,
    ) -> Result<Option<WarRoom>> {
        let mut conn = self.inner.read.acquire().await?;
        active_room(&mut conn, account_id, incident_id).await
    }

    /// One war room of the account by id.
    pub async fn war_room(&self, account_id: i64, room_id: &str) -> Result<Option<WarRoom>> {
        let mut conn = self.inner.read.acquire().await?;
        let mut sql = Sql::new("SELECT ");
        sql.push(COLUMNS)
            .push(" FROM war_rooms WHERE account_id = ")
            .bind(account_id)
            .push(" AND room_id = ")
            .bind(room_id);
        sql.query_on(&conn)
            .fetch_optional(&mut *conn)
            .await?
            .as_ref()
            .map(room_row)
            .transpose()
    }

    /// The account's war rooms, newest first; of one incident when `incident_id` is given,
    /// of one status when `status` is.
    pub async fn war_rooms(
        &self,
        account_id: i64,
        incident_id: Option<&str>,
        status: Option<&str>,
    ) -> Result<Vec<WarRoom>> {
        let mut conn = self.inner.read.acquire().await?;
        let mut sql = Sql::new("SELECT ");
        sql.push(COLUMNS)
            .push(" FROM war_rooms WHERE account_id = ")
            .bind(account_id);
        if let Some(i) = incident_id {
            sql.push(" AND incident_id = ").bind(i);
        }
        if let Some(s) = status {
            sql.push(" AND status = ").bind(s);
        }
        // Within one millisecond the active room is the newer one (at most one is active,
        // and it can only have been created after the others were dissolved, RSP-437):
        // `active` sorts before `dissolved`.
        sql.push(" ORDER BY created_at DESC, status, room_id");
        sql.query_on(&conn)
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(room_row)
            .collect()
    }

    /// The active war room on an integration's chat (a platform event names only the chat).
    pub async fn war_room_by_chat(
        &self,
        account_id: i64,
        integration_id: i64,
        chat_id: &str,
    ) -> Result<Option<WarRoom>> {
        let mut conn = self.inner.read.acquire().await?;
        let mut sql = Sql::new("SELECT ");
        sql.push(COLUMNS)
            .push(" FROM war_rooms WHERE account_id = ")
            .bind(account_id)
            .push(" AND integration_id = ")
            .bind(integration_id)
            .push(" AND chat_id = ")
            .bind(chat_id)
            .push(" AND status = 'active'");
        sql.query_on(&conn)
            .fetch_optional(&mut *conn)
            .await?
            .as_ref()
            .map(room_row)
            .transpose()
    }

    /// A room's members as `(member_id, im_user_id)`; the id is '' while not yet resolved.
    pub async fn war_room_members(
        &self,
        account_id: i64,
        room_id: &str,
    ) -> Result<Vec<(i64, String)>> {
        let mut conn = self.inner.read.acquire().await?;
        let mut sql =
            Sql::new("SELECT member_id, im_user_id FROM war_room_members WHERE account_id = ");
        sql.bind(account_id)
            .push(" AND room_id = ")
            .bind(room_id)
            .push(" ORDER BY member_id");
        sql.query_on(&conn)
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(|r| Ok((get_i64(r, "member_id")?, get_str(r, "im_user_id")?)))
            .collect()
    }

    /// Records members a room has invited (or re-resolved), keeping earlier ones.
    pub async fn add_war_room_members(
        &self,
        room: &WarRoom,
        members: &[(i64, String)],
        now: Millis,
    ) -> Result<()> {
        let mut tx = self.inner.write.begin().await?;
        insert_members(&mut tx, room, members, now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// RSP-431 step 5: stores a war room the platform created, with its invitations, and
    /// writes `i_wr_create` (with `detail.uninvited`, RSP-432), in one transaction. Refused
    /// when the incident is gone or Closed or has an active room meanwhile (RSP-022, RSP-430).
    pub async fn record_war_room(
        &self,
        room: &WarRoom,
        integration_name: &str,
        invitations: &WarRoomInvitations,
        now: Millis,
    ) -> Result<std::result::Result<WarRoom, WarRoomRefusal>> {
        let mut tx = self.inner.write.begin().await?;
        lock_incidents(&mut tx).await?;
        let Some(inc) = load_incident(&mut tx, room.account_id, &room.incident_id).await? else {
            tx.rollback().await?;
            return Ok(Err(WarRoomRefusal::IncidentNotFound));
        };
        if inc.progress == Progress::Closed {
            tx.rollback().await?;
            return Ok(Err(WarRoomRefusal::Closed));
        }
        if active_room(&mut tx, room.account_id, &room.incident_id)
            .await?
            .is_some()
        {
            tx.rollback().await?;
            return Ok(Err(WarRoomRefusal::AlreadyActive));
        }
        let mut sql = Sql::new("INSERT INTO war_rooms (");
        sql.push(COLUMNS).push(") VALUES (");
        sql.bind(room.room_id.as_str())
            .push(", ")
            .bind(room.account_id)
            .push(", ")
            .bind(room.incident_id.as_str())
            .push(", ")
            .bind(room.integration_id)
            .push(", ")
            .bind(room.plugin_type.as_str())
            .push(", ")
            .bind(room.chat_id.as_str())
            .push(", ")
            .bind(room.chat_name.as_str())
            .push(", ")
            .bind(room.share_link.as_str())
            .push(", ")
            .bind(room.card_ref.as_str())
            .push(", 'active', ")
            .bind(room.created_by)
            .push(", ")
            .bind(now)
            .push(", 0)");
        sql.query_on(&tx).execute(&mut *tx).await?;
        insert_members(&mut tx, room, &invitations.invited, now).await?;
        let mut detail = entry_detail(room, integration_name);
        detail["uninvited"] = json!(invitations.uninvited);
        write_entry(&mut tx, &inc, "i_wr_create", room.created_by, detail, now).await?;
        tx.commit().await?;
        let mut stored = room.clone();
        stored.status = "active".into();
        stored.created_at = now;
        Ok(Ok(stored))
    }

    /// RSP-436: marks the incident's active war room dissolved and writes `i_wr_delete` by
    /// `actor` (0 when the platform reported the chat gone). A person may dissolve only a
    /// Closed incident's room (`require_closed`); the platform's report is recorded always.
    pub async fn dissolve_war_room(
        &self,
        account_id: i64,
        incident_id: &str,
        actor: i64,
        integration_name: &str,
        require_closed: bool,
        now: Millis,
    ) -> Result<std::result::Result<WarRoom, WarRoomRefusal>> {
        let mut tx = self.inner.write.begin().await?;
        lock_incidents(&mut tx).await?;
        let Some(inc) = load_incident(&mut tx, account_id, incident_id).await? else {
            tx.rollback().await?;
            return Ok(Err(WarRoomRefusal::IncidentNotFound));
        };
        if require_closed && inc.progress != Progress::Closed {
            tx.rollback().await?;
            return Ok(Err(WarRoomRefusal::NotClosed));
        }
        let Some(mut room) = active_room(&mut tx, account_id, incident_id).await? else {
            tx.rollback().await?;
            return Ok(Err(WarRoomRefusal::NoActiveRoom));
        };
        let mut sql = Sql::new("UPDATE war_rooms SET status = 'dissolved', dissolved_at = ");
        sql.bind(now)
            .push(" WHERE room_id = ")
            .bind(room.room_id.as_str())
            .push(" AND status = 'active'");
        sql.query_on(&tx).execute(&mut *tx).await?;
        room.status = "dissolved".into();
        room.dissolved_at = now;
        write_entry(
            &mut tx,
            &inc,
            "i_wr_delete",
            actor,
            entry_detail(&room, integration_name),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(Ok(room))
    }

    /// Replaces the members invited to every war room of the account.
    pub async fn set_war_room_observers(
        &self,
        account_id: i64,
        member_ids: &[i64],
        now: Millis,
    ) -> Result<()> {
        let mut tx = self.inner.write.begin().await?;
        let mut sql = Sql::new("DELETE FROM war_room_observers WHERE account_id = ");
        sql.bind(account_id);
        sql.query_on(&tx).execute(&mut *tx).await?;
        let unique: BTreeSet<i64> = member_ids.iter().copied().collect();
        for id in unique {
            let mut sql = Sql::new(
                "INSERT INTO war_room_observers (account_id, member_id, created_at) VALUES (",
            );
            sql.bind(account_id)
                .push(", ")
                .bind(id)
                .push(", ")
                .bind(now)
                .push(")");
            sql.query_on(&tx).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The members invited to every war room of the account, by id.
    pub async fn war_room_observers(&self, account_id: i64) -> Result<Vec<i64>> {
        let mut conn = self.inner.read.acquire().await?;
        let mut sql = Sql::new("SELECT member_id FROM war_room_observers WHERE account_id = ");
        sql.bind(account_id).push(" ORDER BY member_id");
        sql.query_on(&conn)
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(|r| get_i64(r, "member_id"))
            .collect()
    }

    /// RSP-438: turns `war_room_enabled` of an IM integration on or off. Turning it on is
    /// refused while another integration of the account has it (1.21). False when the
    /// integration does not exist.
    pub async fn set_im_war_room_enabled(
        &self,
        account_id: i64,
        integration_id: i64,
        enabled: bool,
        now: Millis,
    ) -> Result<std::result::Result<bool, crate::ImRefusal>> {
        let mut tx = self.inner.write.begin().await?;
        if enabled {
            let mut sql =
                Sql::new("SELECT integration_id FROM im_integrations WHERE account_id = ");
            sql.bind(account_id)
                .push(" AND war_room_enabled = 1 AND integration_id <> ")
                .bind(integration_id);
            if let Some(r) = sql.query_on(&tx).fetch_optional(&mut *tx).await? {
                let other = get_i64(&r, "integration_id")?;
                tx.rollback().await?;
                return Ok(Err(crate::ImRefusal::WarRoomTaken(other)));
            }
        }
        let mut sql = Sql::new("UPDATE im_integrations SET war_room_enabled = ");
        sql.bind(i64::from(enabled))
            .push(", updated_at = ")
            .bind(now)
            .push(" WHERE account_id = ")
            .bind(account_id)
            .push(" AND integration_id = ")
            .bind(integration_id);
        let found = sql.query_on(&tx).execute(&mut *tx).await?.rows_affected() == 1;
        tx.commit().await?;
        Ok(Ok(found))
    }
}

/// RSP-433 / RSP-434: queues the war-room sync the changes ask for, in the transaction that
/// writes them. Only incidents with an active room on an enabled war-room integration
/// (RSP-438) are considered; an account without one pays one read.
pub(crate) async fn enqueue(
    conn: &mut AnyConnection,
    changes: &[Change<'_>],
    now: Millis,
) -> Result<()> {
    let relevant: Vec<&Change<'_>> = changes
        .iter()
        .filter(|c| !c.outcome.timeline.is_empty())
        .collect();
    if relevant.is_empty() {
        return Ok(());
    }
    let mut rooms: HashMap<String, WarRoom> = HashMap::new();
    for chunk in relevant.chunks(64) {
        let mut sql = Sql::new("SELECT ");
        let cols: Vec<String> = COLUMNS.split(", ").map(|c| format!("w.{c}")).collect();
        sql.push(&cols.join(", ")).push(
            " FROM war_rooms w JOIN im_integrations i ON i.integration_id = w.integration_id \
             AND i.account_id = w.account_id WHERE w.status = 'active' \
             AND i.war_room_enabled = 1 AND i.status = 'enabled' AND (",
        );
        for (n, c) in chunk.iter().enumerate() {
            if n > 0 {
                sql.push(" OR ");
            }
            sql.push("(w.account_id = ")
                .bind(c.incident.account_id)
                .push(" AND w.incident_id = ")
                .bind(c.incident.incident_id.as_str())
                .push(")");
        }
        sql.push(")");
        for row in sql.query_on(conn).fetch_all(&mut *conn).await? {
            let room = room_row(&row)?;
            rooms.insert(room.incident_id.clone(), room);
        }
    }
    if rooms.is_empty() {
        return Ok(());
    }
    for c in relevant {
        let Some(room) = rooms.get(&c.incident.incident_id) else {
            continue;
        };
        let mut sql = Sql::new("SELECT member_id FROM war_room_members WHERE room_id = ");
        sql.bind(room.room_id.as_str());
        let present: BTreeSet<i64> = sql
            .query_on(conn)
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(|r| get_i64(r, "member_id"))
            .collect::<Result<_>>()?;
        let newcomers: Vec<i64> = c
            .incident
            .response
            .responders
            .iter()
            .map(|r| r.person_id)
            .filter(|p| *p != 0 && !present.contains(p))
            .collect::<BTreeSet<i64>>()
            .into_iter()
            .collect();
        let events = state_events(c);
        if newcomers.is_empty() && events.is_empty() {
            continue;
        }
        // Decided now, so a second change before the send does not invite them again.
        let pending: Vec<(i64, String)> = newcomers.iter().map(|p| (*p, String::new())).collect();
        insert_members(conn, room, &pending, now).await?;
        let last = c
            .outcome
            .timeline
            .last()
            .map_or("", |e| e.entry_id.as_str());
        let rid = format!("wr-{}-{last}", room.room_id);
        let target = json!({
            "room_id": room.room_id,
            "invite": newcomers,
            "events": events,
        });
        queue_follow_up(conn, &rid, c.incident, WAR_ROOM_SYNC, &target, now).await?;
    }
    Ok(())
}

/// The change's timeline entries that move what a chat or card shows (RSP-434, RSP-312), as
/// the outbox row carries them: `{type, creator_id, detail}`.
pub(crate) fn state_events(c: &Change<'_>) -> Vec<Value> {
    c.outcome
        .timeline
        .iter()
        .filter(|e| STATE_KINDS.contains(&e.kind))
        .map(|e| json!({"type": e.kind, "creator_id": e.creator_id, "detail": e.detail}))
        .collect()
}

/// Queues an outbox row that follows an incident change rather than notifying a person
/// (war-room sync, card refresh): `kind` is its `fire_type`, `reason` and `channel`, no
/// firing, no person. A repeated `rid` is ignored, so a retried transaction queues it once.
pub(crate) async fn queue_follow_up(
    conn: &mut AnyConnection,
    rid: &str,
    inc: &Incident,
    kind: &str,
    target: &Value,
    now: Millis,
) -> Result<()> {
    let mut sql = Sql::new(
        "INSERT INTO notifications (rid, account_id, incident_id, firing_id, reason, \
         fire_type, escalate_rule_id, layer_idx, channel, person_id, target, severity, \
         created_at) VALUES (",
    );
    sql.bind(rid)
        .push(", ")
        .bind(inc.account_id)
        .push(", ")
        .bind(inc.incident_id.as_str())
        .push(", '', ")
        .bind(kind)
        .push(", ")
        .bind(kind)
        .push(", '', 0, ")
        .bind(kind)
        .push(", 0, ")
        .bind(target.to_string())
        .push(", ")
        .bind(inc.incident_severity.as_str())
        .push(", ")
        .bind(now)
        .push(") ON CONFLICT (rid) DO NOTHING");
    sql.query_on(conn).execute(&mut *conn).await?;
    Ok(())
}
