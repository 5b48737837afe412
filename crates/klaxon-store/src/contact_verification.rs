//! A member's own change of e-mail address or phone number (response.md RSP-333; migration
//! 0075): a one-time code goes to the new address or number, and only the right code, within
//! its 10 minutes and 5 tries, writes the new value to the member — marked verified. The
//! same flow verifies a contact the member already has but never proved. Codes are kept as
//! a salted SHA-256 only; the rules are `klaxon_core::one_time_code`.

use jiff::Timestamp;
use klaxon_core::model::Millis;
use klaxon_core::one_time_code::{CodeFacts, CodeRefusal, check_code, next_code_allowed};
use sha2::{Digest, Sha256};
use sqlx::AnyConnection;

use crate::db::Sql;
use crate::rows::{get_i64, get_str};
use crate::signin::random_hex;
use crate::{Result, Store, StoreError};

/// Codes older than this are deleted when a new one is issued: they can no longer be used
/// and only name an address.
const CODE_KEEP_MS: Millis = 24 * 3_600_000;

/// Which contact method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContactKind {
    Email,
    Phone,
}

impl ContactKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ContactKind::Email => "email",
            ContactKind::Phone => "phone",
        }
    }

    pub fn parse(s: &str) -> Option<ContactKind> {
        match s {
            "email" => Some(ContactKind::Email),
            "phone" => Some(ContactKind::Phone),
            _ => None,
        }
    }
}

/// The address or number a code is for, already validated and normalised by the caller
/// (`klaxon_core::directory::email` / `phone`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactTarget {
    pub kind: ContactKind,
    /// The e-mail address as typed (trimmed), or the phone in E.164.
    pub value: String,
    /// The phone's country code (empty for e-mail).
    pub country_code: String,
}

/// What [`Store::issue_contact_code`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContactCodeIssue {
    /// Stored (hashed); send `code` to the target.
    Issued,
    /// The target, or the member, had its codes for the hour: none until then.
    Throttled { until: Millis },
    /// Another member of the account already uses this address or number (RSP-552).
    Taken,
    /// It is already the member's own, verified: nothing to prove.
    AlreadyVerified,
    /// The member does not exist (any more).
    NoMember,
}

/// What [`Store::confirm_contact_code`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContactChange {
    /// The member's contact is now `target`, verified; `before` is what it was.
    Changed {
        target: ContactTarget,
        before: String,
    },
    /// The code was refused; a wrong guess has been counted.
    Refused(CodeRefusal),
    /// Another member took the address or number since the code was sent.
    Taken,
}

fn code_hash(salt: &str, code: &str) -> String {
    hex::encode(Sha256::digest(format!("{salt}:{code}").as_bytes()))
}

/// Compares without an early exit, so the time taken says nothing about the stored hash.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

fn ts(ms: Millis) -> Result<Timestamp> {
    Timestamp::from_millisecond(ms).map_err(|e| StoreError::Corrupt(format!("time {ms}: {e}")))
}

/// The column of `members` a kind is kept in, with its verified flag.
fn columns(kind: ContactKind) -> (&'static str, &'static str) {
    match kind {
        ContactKind::Email => ("email", "email_verified"),
        ContactKind::Phone => ("phone", "phone_verified"),
    }
}

/// The key a target is compared by: e-mail addresses case-insensitively (RSP-552).
fn match_key(target: &ContactTarget) -> String {
    match target.kind {
        ContactKind::Email => target.value.to_lowercase(),
        ContactKind::Phone => target.value.clone(),
    }
}

/// Whether another live member of the account has the address or number.
async fn taken_by_other(
    conn: &mut AnyConnection,
    account_id: i64,
    member_id: i64,
    target: &ContactTarget,
) -> Result<bool> {
    let mut sql = Sql::new("SELECT COUNT(*) AS n FROM members WHERE account_id = ");
    sql.bind(account_id)
        .push(" AND member_id <> ")
        .bind(member_id)
        .push(" AND status <> 'deleted' AND ");
    match target.kind {
        ContactKind::Email => sql.push("LOWER(email) = "),
        ContactKind::Phone => sql.push("phone = "),
    };
    sql.bind(match_key(target));
    let row = sql.query_on(conn).fetch_one(&mut *conn).await?;
    Ok(get_i64(&row, "n")? > 0)
}

/// Creation times of the codes sent within the last day, by a condition on the table.
async fn sent_times(conn: &mut AnyConnection, sql: &mut Sql) -> Result<Vec<Timestamp>> {
    sql.query_on(conn)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|r| ts(get_i64(r, "created_at")?))
        .collect()
}

impl Store {
    /// RSP-333: stores a new code for the member's new (or unproved) contact, unless the
    /// target or the member already had 5 codes this hour, another member has the value,
    /// or it is already the member's verified contact. A new code voids the member's earlier
    /// ones of the same kind (only the latest is ever checked).
    pub async fn issue_contact_code(
        &self,
        account_id: i64,
        member_id: i64,
        target: &ContactTarget,
        code: &str,
        now: Millis,
    ) -> Result<ContactCodeIssue> {
        let (column, verified) = columns(target.kind);
        let mut tx = self.inner.write.begin().await?;
        let mut old = Sql::new("DELETE FROM contact_verifications WHERE created_at < ");
        old.bind(now - CODE_KEEP_MS);
        old.query_on(&tx).execute(&mut *tx).await?;

        let mut sql = Sql::new("SELECT ");
        sql.push(column)
            .push(" AS current_value, ")
            .push(verified)
            .push(" AS verified FROM members WHERE account_id = ")
            .bind(account_id)
            .push(" AND member_id = ")
            .bind(member_id)
            .push(" AND status <> 'deleted'");
        let Some(row) = sql.query_on(&tx).fetch_optional(&mut *tx).await? else {
            return Ok(ContactCodeIssue::NoMember);
        };
        let current = get_str(&row, "current_value")?;
        let current_key = match target.kind {
            ContactKind::Email => current.to_lowercase(),
            ContactKind::Phone => current,
        };
        if current_key == match_key(target) && get_i64(&row, "verified")? != 0 {
            return Ok(ContactCodeIssue::AlreadyVerified);
        }
        if taken_by_other(&mut tx, account_id, member_id, target).await? {
            return Ok(ContactCodeIssue::Taken);
        }

        // The per-address limit, and the same per member, so that nobody can make Klaxon
        // send a stream of codes to numbers they do not own by varying them.
        let now_ts = ts(now)?;
        let mut by_target = Sql::new("SELECT created_at FROM contact_verifications WHERE kind = ");
        by_target.bind(target.kind.as_str());
        match target.kind {
            ContactKind::Email => by_target.push(" AND LOWER(target) = "),
            ContactKind::Phone => by_target.push(" AND target = "),
        };
        by_target.bind(match_key(target));
        let mut by_member =
            Sql::new("SELECT created_at FROM contact_verifications WHERE account_id = ");
        by_member
            .bind(account_id)
            .push(" AND member_id = ")
            .bind(member_id);
        let until = [
            next_code_allowed(&sent_times(&mut tx, &mut by_target).await?, now_ts),
            next_code_allowed(&sent_times(&mut tx, &mut by_member).await?, now_ts),
        ]
        .into_iter()
        .flatten()
        .max();
        if let Some(until) = until {
            return Ok(ContactCodeIssue::Throttled {
                until: until.as_millisecond(),
            });
        }

        let salt = random_hex(16);
        let mut ins = Sql::new(
            "INSERT INTO contact_verifications (account_id, member_id, kind, target, \
             country_code, salt, code_hash, created_at) VALUES (",
        );
        ins.bind(account_id)
            .push(", ")
            .bind(member_id)
            .push(", ")
            .bind(target.kind.as_str())
            .push(", ")
            .bind(target.value.as_str())
            .push(", ")
            .bind(target.country_code.as_str())
            .push(", ")
            .bind(salt.as_str())
            .push(", ")
            .bind(code_hash(&salt, code))
            .push(", ")
            .bind(now)
            .push(")");
        ins.query_on(&tx).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(ContactCodeIssue::Issued)
    }

    /// RSP-333: checks `code` against the member's latest code of `kind` and, if right,
    /// writes the address or number it was sent to as the member's, verified, and spends the
    /// code — in one transaction. A wrong guess is counted (and committed) and changes
    /// nothing else.
    pub async fn confirm_contact_code(
        &self,
        account_id: i64,
        member_id: i64,
        kind: ContactKind,
        code: &str,
        now: Millis,
    ) -> Result<ContactChange> {
        let mut tx = self.inner.write.begin().await?;
        let mut sql = Sql::new(
            "SELECT verification_id, target, country_code, salt, code_hash, created_at, \
             attempts, used_at FROM contact_verifications WHERE account_id = ",
        );
        sql.bind(account_id)
            .push(" AND member_id = ")
            .bind(member_id)
            .push(" AND kind = ")
            .bind(kind.as_str())
            .push(" ORDER BY verification_id DESC LIMIT 1");
        let latest = sql.query_on(&tx).fetch_optional(&mut *tx).await?;
        let Some(row) = latest else {
            return Ok(ContactChange::Refused(CodeRefusal::None));
        };
        let id = get_i64(&row, "verification_id")?;
        let facts = CodeFacts {
            created_at: ts(get_i64(&row, "created_at")?)?,
            attempts: get_i64(&row, "attempts")?,
            used: get_i64(&row, "used_at")? != 0,
        };
        let matches = same(
            &code_hash(&get_str(&row, "salt")?, code),
            &get_str(&row, "code_hash")?,
        );
        if let Err(refusal) = check_code(Some(&facts), matches, ts(now)?) {
            if matches!(refusal, CodeRefusal::Wrong { .. } | CodeRefusal::Exhausted) {
                let mut up = Sql::new(
                    "UPDATE contact_verifications SET attempts = attempts + 1 \
                     WHERE verification_id = ",
                );
                up.bind(id);
                up.query_on(&tx).execute(&mut *tx).await?;
                tx.commit().await?;
            }
            return Ok(ContactChange::Refused(refusal));
        }
        let target = ContactTarget {
            kind,
            value: get_str(&row, "target")?,
            country_code: get_str(&row, "country_code")?,
        };
        if taken_by_other(&mut tx, account_id, member_id, &target).await? {
            return Ok(ContactChange::Taken);
        }
        let (column, verified) = columns(kind);
        let mut sql = Sql::new("SELECT ");
        sql.push(column)
            .push(" AS current_value FROM members WHERE account_id = ")
            .bind(account_id)
            .push(" AND member_id = ")
            .bind(member_id)
            .push(" AND status <> 'deleted'");
        let Some(row) = sql.query_on(&tx).fetch_optional(&mut *tx).await? else {
            return Ok(ContactChange::Refused(CodeRefusal::None));
        };
        let before = get_str(&row, "current_value")?;

        let mut up = Sql::new("UPDATE members SET ");
        up.push(column)
            .push(" = ")
            .bind(target.value.as_str())
            .push(", ")
            .push(verified)
            .push(" = 1, updated_at = ")
            .bind(now);
        if kind == ContactKind::Phone {
            up.push(", country_code = ")
                .bind(target.country_code.as_str());
        }
        up.push(" WHERE account_id = ")
            .bind(account_id)
            .push(" AND member_id = ")
            .bind(member_id);
        match up.query_on(&tx).execute(&mut *tx).await {
            Ok(_) => {}
            // Two members racing for one address: the unique index decides.
            Err(e) if crate::directory::unique_violation(&e) => return Ok(ContactChange::Taken),
            Err(e) => return Err(e.into()),
        }
        let mut spend = Sql::new("UPDATE contact_verifications SET used_at = ");
        spend
            .bind(now)
            .push(" WHERE account_id = ")
            .bind(account_id)
            .push(" AND member_id = ")
            .bind(member_id)
            .push(" AND kind = ")
            .bind(kind.as_str())
            .push(" AND used_at = 0");
        spend.query_on(&tx).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(ContactChange::Changed { target, before })
    }
}
