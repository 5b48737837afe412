//! What insights need from incident timelines (response.md §2.27): per incident, whether it
//! was ever escalated or reassigned (RSP-472), whether it was closed by being merged into
//! another (RSP-471), and each person's first acknowledgement (RSP-477). One read of the
//! timeline rows of those kinds for a set of incidents; the arithmetic is in
//! `klaxon_core::insight`.

use std::collections::HashMap;

use klaxon_core::insight::responder::{Entry, Send};
use klaxon_core::model::{Labels, Millis};
use serde_json::Value;

use crate::Result;
use crate::db::Sql;
use crate::rows::{get_i64, get_json, get_str};

/// The timeline facts of one incident.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TimelineFacts {
    pub escalated: bool,
    pub reassigned: bool,
    pub merged_away: bool,
    /// How many `escalate` and `reassign` assignments it had.
    pub escalations: i64,
    pub reassignments: i64,
    /// (person, instant) of each person's first `i_ack`, in order.
    pub first_acks: Vec<(i64, Millis)>,
}

/// Incidents per statement.
const CHUNK: usize = 256;

impl crate::Store {
    /// The timeline facts of the account's incidents `ids` (an incident without any is absent).
    pub async fn insight_timeline_facts(
        &self,
        account_id: i64,
        ids: &[String],
    ) -> Result<HashMap<String, TimelineFacts>> {
        let mut out: HashMap<String, TimelineFacts> = HashMap::new();
        let mut conn = self.inner.read.acquire().await?;
        for chunk in ids.chunks(CHUNK) {
            let mut sql = Sql::new(
                "SELECT incident_id, kind, creator_id, created_at, detail FROM incident_timeline \
                 WHERE account_id = ",
            );
            sql.bind(account_id)
                .push(" AND kind IN ('i_assign', 'i_merge', 'i_ack')")
                .and_in_padded("incident_id", chunk)
                .push(" ORDER BY created_at, seq");
            for row in sql.query_on(&conn).fetch_all(&mut *conn).await? {
                let kind = get_str(&row, "kind")?;
                let entry = out.entry(get_str(&row, "incident_id")?).or_default();
                match kind.as_str() {
                    "i_ack" => {
                        let person = get_i64(&row, "creator_id")?;
                        if !entry.first_acks.iter().any(|(p, _)| *p == person) {
                            entry
                                .first_acks
                                .push((person, get_i64(&row, "created_at")?));
                        }
                    }
                    "i_assign" => {
                        let detail: Value =
                            serde_json::from_str(&get_str(&row, "detail")?).unwrap_or(Value::Null);
                        match detail["type"].as_str() {
                            Some("escalate") => {
                                entry.escalated = true;
                                entry.escalations += 1;
                            }
                            Some("reassign") => {
                                entry.reassigned = true;
                                entry.reassignments += 1;
                            }
                            _ => {}
                        }
                    }
                    _ => {
                        // `i_merge` on the source names its target; on the target it lists
                        // the sources.
                        let detail: Value =
                            serde_json::from_str(&get_str(&row, "detail")?).unwrap_or(Value::Null);
                        if detail.get("target_incident").is_some() {
                            entry.merged_away = true;
                        }
                    }
                }
            }
        }
        Ok(out)
    }
}

impl crate::Store {
    /// The timeline entries that shape the responder lists of the account's incidents `ids`
    /// (assignments, added responders, acknowledgements), per incident in time order
    /// (RSP-479).
    pub async fn insight_responder_entries(
        &self,
        account_id: i64,
        ids: &[String],
    ) -> Result<HashMap<String, Vec<Entry>>> {
        let mut out: HashMap<String, Vec<Entry>> = HashMap::new();
        let mut conn = self.inner.read.acquire().await?;
        for chunk in ids.chunks(CHUNK) {
            let mut sql = Sql::new(
                "SELECT incident_id, kind, creator_id, created_at, detail FROM incident_timeline \
                 WHERE account_id = ",
            );
            sql.bind(account_id)
                .push(" AND kind IN ('i_assign', 'i_a_rspd', 'i_ack')")
                .and_in_padded("incident_id", chunk)
                .push(" ORDER BY created_at, seq");
            for row in sql.query_on(&conn).fetch_all(&mut *conn).await? {
                let detail: Value =
                    serde_json::from_str(&get_str(&row, "detail")?).unwrap_or(Value::Null);
                out.entry(get_str(&row, "incident_id")?)
                    .or_default()
                    .push(Entry {
                        kind: get_str(&row, "kind")?,
                        creator_id: get_i64(&row, "creator_id")?,
                        created_at: get_i64(&row, "created_at")?,
                        detail,
                    });
            }
        }
        Ok(out)
    }

    /// Every send addressed to a person for the account's incidents `ids` (RSP-478, RSP-479).
    pub async fn insight_sends(&self, account_id: i64, ids: &[String]) -> Result<Vec<Send>> {
        let mut out = Vec::new();
        let mut conn = self.inner.read.acquire().await?;
        for chunk in ids.chunks(CHUNK) {
            let mut sql = Sql::new(
                "SELECT incident_id, person_id, channel, status, created_at FROM notifications \
                 WHERE account_id = ",
            );
            sql.bind(account_id)
                .push(" AND person_id > 0")
                .and_in_padded("incident_id", chunk)
                .push(" ORDER BY created_at, seq");
            for row in sql.query_on(&conn).fetch_all(&mut *conn).await? {
                out.push(Send {
                    incident_id: get_str(&row, "incident_id")?,
                    person_id: get_i64(&row, "person_id")?,
                    channel: get_str(&row, "channel")?,
                    failed: get_str(&row, "status")? == "failed",
                    created_at: get_i64(&row, "created_at")?,
                });
            }
        }
        Ok(out)
    }
}

impl crate::Store {
    /// The labels and event count of every alert of the account's incidents `ids`, for the
    /// top label values of a period (RSP-482).
    pub async fn insight_alert_labels(
        &self,
        account_id: i64,
        ids: &[String],
    ) -> Result<Vec<(Labels, i64)>> {
        let mut out = Vec::new();
        let mut conn = self.inner.read.acquire().await?;
        for chunk in ids.chunks(CHUNK) {
            let mut sql = Sql::new("SELECT labels, event_cnt FROM alerts WHERE account_id = ");
            sql.bind(account_id).and_in_padded("incident_id", chunk);
            for row in sql.query_on(&conn).fetch_all(&mut *conn).await? {
                out.push((
                    get_json::<Labels>(&row, "labels")?,
                    get_i64(&row, "event_cnt")?,
                ));
            }
        }
        Ok(out)
    }
}
