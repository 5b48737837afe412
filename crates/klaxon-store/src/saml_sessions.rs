//! The SAML subject of console sessions opened by a SAML sign-in (response.md RSP-574,
//! docs/sign-in.md "Single logout"; table `saml_sessions`, migration 0091).

use klaxon_core::model::Millis;
use sqlx::any::AnyRow;

use crate::db::Sql;
use crate::rows::{get_i64, get_str};
use crate::signin::hash_secret;
use crate::{Result, Store};

/// The SAML subject of one console session.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SamlSession {
    pub account_id: i64,
    pub member_id: i64,
    pub login_domain: String,
    pub name_id: String,
    pub name_id_format: String,
    pub name_qualifier: String,
    pub sp_name_qualifier: String,
    /// '' when the assertion had none.
    pub session_index: String,
    pub expires_at: Millis,
}

fn row_of(row: &AnyRow) -> Result<SamlSession> {
    Ok(SamlSession {
        account_id: get_i64(row, "account_id")?,
        member_id: get_i64(row, "member_id")?,
        login_domain: get_str(row, "login_domain")?,
        name_id: get_str(row, "name_id")?,
        name_id_format: get_str(row, "name_id_format")?,
        name_qualifier: get_str(row, "name_qualifier")?,
        sp_name_qualifier: get_str(row, "sp_name_qualifier")?,
        session_index: get_str(row, "session_index")?,
        expires_at: get_i64(row, "expires_at")?,
    })
}

const COLUMNS: &str = "account_id, member_id, login_domain, name_id, name_id_format, \
                       name_qualifier, sp_name_qualifier, session_index, expires_at";

impl Store {
    /// Remembers the SAML subject of the session of `token` (just opened by a SAML
    /// sign-in). Expired rows are purged on the way.
    pub async fn record_saml_session(
        &self,
        token: &str,
        session: &SamlSession,
        now: Millis,
    ) -> Result<()> {
        let mut tx = self.inner.write.begin().await?;
        let mut sql = Sql::new("DELETE FROM saml_sessions WHERE expires_at <= ");
        sql.bind(now);
        sql.query_on(&tx).execute(&mut *tx).await?;
        let mut sql = Sql::new(
            "INSERT INTO saml_sessions (session_hash, account_id, member_id, login_domain, \
             name_id, name_id_format, name_qualifier, sp_name_qualifier, session_index, \
             created_at, expires_at) VALUES (",
        );
        sql.bind(hash_secret(token))
            .push(", ")
            .bind(session.account_id)
            .push(", ")
            .bind(session.member_id)
            .push(", ")
            .bind(session.login_domain.as_str())
            .push(", ")
            .bind(session.name_id.as_str())
            .push(", ")
            .bind(session.name_id_format.as_str())
            .push(", ")
            .bind(session.name_qualifier.as_str())
            .push(", ")
            .bind(session.sp_name_qualifier.as_str())
            .push(", ")
            .bind(session.session_index.as_str())
            .push(", ")
            .bind(now)
            .push(", ")
            .bind(session.expires_at)
            .push(")");
        sql.query_on(&tx).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The SAML subject of the session of `token`, if a SAML sign-in opened it.
    pub async fn saml_session(&self, token: &str) -> Result<Option<SamlSession>> {
        let mut sql = Sql::new(&format!(
            "SELECT {COLUMNS} FROM saml_sessions WHERE session_hash = "
        ));
        sql.bind(hash_secret(token));
        match sql.query().fetch_optional(&self.inner.read).await? {
            Some(row) => Ok(Some(row_of(&row)?)),
            None => Ok(None),
        }
    }

    /// IdP-initiated logout: ends every console session of the account that a SAML sign-in
    /// of `login_domain` opened for `name_id` (and, when `session_indexes` is not empty, for
    /// one of those sessions only). Returns the subjects of the sessions ended.
    pub async fn end_saml_sessions(
        &self,
        account_id: i64,
        login_domain: &str,
        name_id: &str,
        session_indexes: &[String],
    ) -> Result<Vec<SamlSession>> {
        let mut tx = self.inner.write.begin().await?;
        let mut sql = Sql::new(&format!(
            "SELECT session_hash, {COLUMNS} FROM saml_sessions WHERE account_id = "
        ));
        sql.bind(account_id)
            .push(" AND login_domain = ")
            .bind(login_domain)
            .push(" AND name_id = ")
            .bind(name_id);
        let rows = sql.query_on(&tx).fetch_all(&mut *tx).await?;
        let mut ended = Vec::new();
        for row in rows {
            let session = row_of(&row)?;
            if !session_indexes.is_empty() && !session_indexes.contains(&session.session_index) {
                continue;
            }
            let hash = get_str(&row, "session_hash")?;
            let mut del = Sql::new("DELETE FROM sessions WHERE session_hash = ");
            del.bind(hash.as_str());
            del.query_on(&tx).execute(&mut *tx).await?;
            let mut del = Sql::new("DELETE FROM saml_sessions WHERE session_hash = ");
            del.bind(hash.as_str());
            del.query_on(&tx).execute(&mut *tx).await?;
            ended.push(session);
        }
        tx.commit().await?;
        Ok(ended)
    }
}
