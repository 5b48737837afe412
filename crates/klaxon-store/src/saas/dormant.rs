//! Dormant login identifiers (service-agreement.md SVC-009, migration 0079; docs/saas.md
//! "Dormant login identifiers"). Cloud mode only: the SaaS worker runs
//! [`Store::saas_dormant_logins_due`] once per billing day.
//!
//! A person is a login identifier: the lower-case e-mail address shared by their
//! memberships (SVC-008). Its last sign-in is the latest `last_signin_at` of those
//! memberships (a membership that never signed in counts from its creation, so an invitation
//! nobody took up ages like a sign-in). When that is `dormant_login_months` ago (12) and no
//! tenant the person belongs to has service in force, the identifier is deactivated; the
//! person is told 30 days ahead (*decision*), and a sign-in meanwhile keeps it. Deactivation
//! clears the memberships' password and stops sign-in codes, so the address is free for a
//! new registration; the memberships themselves, like every other tenant record, stay as
//! they are: tenants follow their own lifecycle.

use std::collections::BTreeMap;

use jiff::{Span, Timestamp};
use klaxon_core::model::Millis;
use klaxon_saas::codec;
use klaxon_saas::notice::Category;
use klaxon_saas::state::in_force;
use sqlx::AnyConnection;

use super::{Result, SaasSettings, audit, corrupt, ms, notice_outbox, ts};
use crate::Store;
use crate::db::Sql;
use crate::rows::{get_i64, get_str};

/// SVC-009: the notice goes out this many days before the deactivation (*decision*).
pub const DORMANT_NOTICE_DAYS: i64 = 30;

/// What one run did to one login identifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DormantAction {
    /// The 30-day notice was queued; deactivation is due at the instant given.
    Noticed { deactivate_at: Millis },
    /// The identifier was deactivated.
    Deactivated,
}

/// A person as the sweep sees them.
#[derive(Debug, Default)]
struct Person {
    /// Latest interactive sign-in, or creation of a membership never signed in to.
    last: Millis,
    /// Some tenant the person belongs to has service in force (or is not billed at all).
    in_force: bool,
    /// The memberships (account, member), lowest account first.
    memberships: Vec<(i64, i64)>,
}

/// The instant a login last used at `last` becomes dormant.
fn dormant_at(last: Millis, settings: &SaasSettings) -> Result<Timestamp> {
    let months = settings.params.dormant_login_months;
    Ok(ts(last)?
        .to_zoned_datetime(settings.billing_tz.clone())
        .checked_add(Span::new().months(months))
        .map_err(|e| corrupt("dormant_login_months", e))?
        .timestamp())
}

async fn people(conn: &mut AnyConnection) -> Result<BTreeMap<String, Person>> {
    // A tenant without a billing row is not billed here (never created through the SaaS
    // paths): it counts as in force, so nobody is deactivated on a guess.
    let rows = Sql::new(
        "SELECT m.account_id, m.member_id, LOWER(m.email) AS login, m.last_signin_at, \
         m.created_at, COALESCE(t.profile, '') AS profile, COALESCE(t.state, '') AS state, \
         COALESCE(t.reason, '') AS reason FROM members m \
         LEFT JOIN saas_tenants t ON t.account_id = m.account_id \
         WHERE m.email <> '' AND m.status <> 'deleted' AND m.login_deactivated_at = 0 \
         ORDER BY m.account_id, m.member_id",
    )
    .query_on(conn)
    .fetch_all(&mut *conn)
    .await?;
    let mut out: BTreeMap<String, Person> = BTreeMap::new();
    for r in &rows {
        let login = get_str(r, "login")?;
        let signed_in = get_i64(r, "last_signin_at")?;
        let last = if signed_in > 0 {
            signed_in
        } else {
            get_i64(r, "created_at")?
        };
        let profile = get_str(r, "profile")?;
        let serving = if profile.is_empty() || profile == "exempt" {
            true
        } else {
            in_force(codec::state(&get_str(r, "state")?, &get_str(r, "reason")?)?)
        };
        let p = out.entry(login).or_default();
        p.last = p.last.max(last);
        p.in_force |= serving;
        p.memberships
            .push((get_i64(r, "account_id")?, get_i64(r, "member_id")?));
    }
    Ok(out)
}

/// The open notice of a login: not carried out, and given after the last sign-in.
async fn open_notice(
    conn: &mut AnyConnection,
    login: &str,
    last: Millis,
) -> Result<Option<(Millis, Millis)>> {
    let mut sql =
        Sql::new("SELECT noticed_at, deactivate_at FROM saas_dormant_logins WHERE login = ");
    sql.bind(login)
        .push(" AND deactivated_at = 0 AND noticed_at >= ")
        .bind(last)
        .push(" ORDER BY noticed_at DESC LIMIT 1");
    match sql.query_on(conn).fetch_optional(&mut *conn).await? {
        Some(r) => Ok(Some((
            get_i64(&r, "noticed_at")?,
            get_i64(&r, "deactivate_at")?,
        ))),
        None => Ok(None),
    }
}

fn utc(t: Millis) -> String {
    Timestamp::from_millisecond(t)
        .map(|t| t.strftime("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default()
}

async fn notify(
    conn: &mut AnyConnection,
    login: &str,
    p: &Person,
    settings: &SaasSettings,
    now: Millis,
    deactivate_at: Millis,
) -> Result<()> {
    let account_id = p.memberships[0].0;
    let mut ins = Sql::new(
        "INSERT INTO saas_dormant_logins (login, noticed_at, deactivate_at, deactivated_at, account_id) VALUES (",
    );
    ins.bind(login)
        .push(", ")
        .bind(now)
        .push(", ")
        .bind(deactivate_at)
        .push(", 0, ")
        .bind(account_id)
        .push(")");
    ins.query_on(conn).execute(&mut *conn).await?;
    // Addressed to the person, not to the tenant's owner: `related` carries the address.
    notice_outbox::enqueue(
        conn,
        account_id,
        Category::DormantLogin,
        "dormant_login",
        (
            "Your sign-in will be deactivated".into(),
            format!(
                "Nobody has signed in with {login} for {} months and none of the organisations \
                 it belongs to has service in force. Unless you sign in before {}, the sign-in \
                 is deactivated and the address becomes free for a new registration. The \
                 organisations' data is not affected.\n",
                settings.params.dormant_login_months,
                utc(deactivate_at)
            ),
        ),
        &format!("dormant_login:{login}:{now}"),
        now,
    )
    .await?;
    audit(
        conn,
        account_id,
        now,
        "system",
        "dormant_login_notice",
        &format!(
            "{login}: deactivated at {} unless used (SVC-009)",
            utc(deactivate_at)
        ),
    )
    .await
}

async fn deactivate(
    conn: &mut AnyConnection,
    login: &str,
    p: &Person,
    noticed_at: Millis,
    now: Millis,
) -> Result<()> {
    for &(account_id, member_id) in &p.memberships {
        // The credential goes, and with it every open session; the membership stays.
        let mut upd = Sql::new("UPDATE members SET password_hash = '', login_deactivated_at = ");
        upd.bind(now)
            .push(" WHERE account_id = ")
            .bind(account_id)
            .push(" AND member_id = ")
            .bind(member_id);
        upd.query_on(conn).execute(&mut *conn).await?;
        let mut del = Sql::new("DELETE FROM sessions WHERE account_id = ");
        del.bind(account_id)
            .push(" AND member_id = ")
            .bind(member_id);
        del.query_on(conn).execute(&mut *conn).await?;
        audit(
            conn,
            account_id,
            now,
            "system",
            "dormant_login_deactivated",
            &format!("{login}: member {member_id} can no longer sign in (SVC-009)"),
        )
        .await?;
    }
    let mut upd = Sql::new("UPDATE saas_dormant_logins SET deactivated_at = ");
    upd.bind(now)
        .push(" WHERE login = ")
        .bind(login)
        .push(" AND noticed_at = ")
        .bind(noticed_at);
    upd.query_on(conn).execute(&mut *conn).await?;
    Ok(())
}

impl Store {
    /// SVC-009's daily sweep (see the module comment): at most once per billing day,
    /// whichever node runs it first. Returns what it did, per login identifier.
    pub async fn saas_dormant_logins_due(
        &self,
        settings: &SaasSettings,
        now: Millis,
    ) -> Result<Vec<(String, DormantAction)>> {
        let day = klaxon_saas::calendar::date_of(ts(now)?, &settings.billing_tz);
        let mut tx = self.inner.write.begin().await?;
        let conn: &mut AnyConnection = &mut tx;
        // The run's row first: a second node (or a second run the same day) finds it.
        let mut claim = Sql::new(
            "INSERT INTO saas_job_runs (account_id, job, run_for, ran_at, outcome) VALUES (0, 'dormant_logins', ",
        );
        claim
            .bind(day.to_string())
            .push(", ")
            .bind(now)
            .push(", '') ON CONFLICT (account_id, job, run_for) DO NOTHING");
        if claim
            .query_on(conn)
            .execute(&mut *conn)
            .await?
            .rows_affected()
            == 0
        {
            return Ok(Vec::new());
        }
        let lead = DORMANT_NOTICE_DAYS * 86_400_000;
        let mut done = Vec::new();
        for (login, p) in people(conn).await? {
            if p.in_force {
                continue;
            }
            let dormant = ms(dormant_at(p.last, settings)?);
            match open_notice(conn, &login, p.last).await? {
                Some((noticed_at, deactivate_at)) if deactivate_at <= now => {
                    deactivate(conn, &login, &p, noticed_at, now).await?;
                    done.push((login, DormantAction::Deactivated));
                }
                Some(_) => {}
                None if dormant - lead <= now => {
                    // Never sooner than 30 days after the notice, even when the sweep first
                    // sees a person who is already dormant.
                    let deactivate_at = dormant.max(now + lead);
                    notify(conn, &login, &p, settings, now, deactivate_at).await?;
                    done.push((login, DormantAction::Noticed { deactivate_at }));
                }
                None => {}
            }
        }
        let mut upd = Sql::new("UPDATE saas_job_runs SET outcome = ");
        upd.bind(format!("{} login identifiers", done.len()))
            .push(" WHERE account_id = 0 AND job = 'dormant_logins' AND run_for = ")
            .bind(day.to_string());
        upd.query_on(conn).execute(&mut *conn).await?;
        tx.commit().await?;
        Ok(done)
    }

    /// The dormancy records of a login identifier, oldest first: (noticed_at,
    /// deactivate_at, deactivated_at).
    pub async fn saas_dormant_login_records(
        &self,
        login: &str,
    ) -> Result<Vec<(Millis, Millis, Millis)>> {
        let mut sql = Sql::new(
            "SELECT noticed_at, deactivate_at, deactivated_at FROM saas_dormant_logins WHERE login = ",
        );
        sql.bind(login.trim().to_lowercase())
            .push(" ORDER BY noticed_at");
        let rows = sql.query().fetch_all(&self.inner.read).await?;
        rows.iter()
            .map(|r| {
                Ok((
                    get_i64(r, "noticed_at")?,
                    get_i64(r, "deactivate_at")?,
                    get_i64(r, "deactivated_at")?,
                ))
            })
            .collect()
    }
}
