//! What the inbox batch reads about the alerts of the incidents it touches (ING-172…175): one
//! aggregate row per (incident, status, severity), not every alert. An incident of 1,000 alerts
//! costs at most 12 rows to the batch instead of 1,000, and every event that joins or changes
//! it is derived from the aggregate (`klaxon_core::merge::Members`) in constant time.

use std::collections::HashMap;

use klaxon_core::merge::Members;
use klaxon_core::model::{AlertSummary, Severity, Status};
use sqlx::AnyConnection;

use crate::Result;
use crate::db::Sql;
use crate::rows::{self, get_enum, get_i64, get_str};

/// The stored alerts of `ids` (all of the account `account`), aggregated per incident. An
/// incident without alerts has no entry.
pub(crate) async fn aggregate(
    conn: &mut AnyConnection,
    account: i64,
    ids: &[String],
) -> Result<HashMap<String, Members>> {
    let mut out: HashMap<String, Members> = HashMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    // SUM over BIGINT is NUMERIC on PostgreSQL: cast back.
    let mut sql = Sql::new(
        "SELECT incident_id, alert_status, alert_severity, COUNT(*) AS n, \
         MAX(last_time) AS last_time, MAX(end_time) AS end_time, \
         CAST(SUM(event_cnt) AS BIGINT) AS event_cnt FROM alerts WHERE account_id = ",
    );
    sql.bind(account);
    sql.and_in_padded("incident_id", ids);
    sql.push(" GROUP BY incident_id, alert_status, alert_severity");
    for row in sql.query_on(conn).fetch_all(&mut *conn).await? {
        out.entry(get_str(&row, "incident_id")?)
            .or_default()
            .add_group(
                get_enum::<Status>(&row, "alert_status")?,
                get_enum::<Severity>(&row, "alert_severity")?,
                get_i64(&row, "n")?,
                get_i64(&row, "last_time")?,
                get_i64(&row, "end_time")?,
                get_i64(&row, "event_cnt")?,
            );
    }
    Ok(out)
}

/// Every stored alert of `ids`, per incident: the full read, only for an aggregate that the
/// batch's own changes left inexact (an alert holding the latest time moved away).
pub(crate) async fn listed(
    conn: &mut AnyConnection,
    account: i64,
    ids: &[String],
) -> Result<HashMap<String, Vec<AlertSummary>>> {
    let mut out: HashMap<String, Vec<AlertSummary>> = HashMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    let mut sql = Sql::new("SELECT incident_id, ");
    sql.push(rows::ALERT_SUMMARY_COLUMNS)
        .push(" FROM alerts WHERE account_id = ")
        .bind(account);
    sql.and_in_padded("incident_id", ids);
    for row in sql.query_on(conn).fetch_all(&mut *conn).await? {
        out.entry(get_str(&row, "incident_id")?)
            .or_default()
            .push(rows::alert_summary(&row)?);
    }
    Ok(out)
}
