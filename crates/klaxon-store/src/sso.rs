//! Single sign-on (response.md §1.24, RSP-570…RSP-573; migration 0034): the account's SSO
//! configuration, the sign-ins started at an identity provider, and the member a successful
//! sign-in logs in (matched by email, or created just in time).
//!
//! The protocol's secret (OIDC client secret, LDAP bind password) is sealed at rest under the
//! tenant's data key when a key-encryption key is configured ([`crate::sealing`]).

use klaxon_core::directory::STATUS_ENABLED;
use klaxon_core::model::Millis;
use klaxon_core::saml::SamlSettings;
use klaxon_core::sso::{
    CasSettings, FieldMapping, LdapSettings, MappedUser, OidcSettings, SsoConfig, TeamMapping,
};
use serde::{Deserialize, Serialize};
use sqlx::AnyConnection;
use sqlx::any::AnyRow;

use crate::db::Sql;
use crate::directory::{MemberRow, Outcome, Refusal, insert_member_row, unique_violation};
use crate::rows::{get_i64, get_str, to_json};
use crate::sealing::{SecretSlot, seal_value};
use crate::signin::hash_secret;
use crate::{Result, Store, StoreError};

/// A sign-in started at the identity provider (the `state` of the authorization request).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsoLogin {
    pub account_id: i64,
    pub login_domain: String,
    pub nonce: String,
    pub code_verifier: String,
    pub next_path: String,
}

/// A configuration with what a sign-in needs beyond [`SsoConfig`]: its account and secret.
#[derive(Debug, Clone)]
pub struct SsoSignInConfig {
    pub account_id: i64,
    pub config: SsoConfig,
    pub secret: String,
}

/// The member an SSO sign-in logs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SsoMember {
    pub member_id: i64,
    /// True when the member was created by this sign-in (RSP-572).
    pub created: bool,
}

const COLUMNS: &str = "account_id, enabled, protocol, login_domain, create_account_on_login, \
                       field_mapping, default_role_ids, settings, secret";

/// The `settings` column: the protocol settings and the team mapping. The OIDC fields sit at
/// the top level, as migration 0034 first stored them; the others default when absent.
#[derive(Serialize, Deserialize)]
struct StoredSettings {
    #[serde(flatten)]
    oidc: OidcSettings,
    #[serde(default)]
    ldap: LdapSettings,
    #[serde(default)]
    cas: CasSettings,
    saml: SamlSettings,
    #[serde(default)]
    team_mapping: TeamMapping,
}

fn settings_json(config: &SsoConfig) -> Result<String> {
    to_json(&StoredSettings {
        oidc: config.oidc.clone(),
        ldap: config.ldap.clone(),
        cas: config.cas.clone(),
        saml: config.saml.clone(),
        team_mapping: config.team_mapping.clone(),
    })
}

fn secret_slot(account_id: i64) -> SecretSlot {
    SecretSlot::new(account_id, "sso_configs", "secret", account_id)
}

fn corrupt(col: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("sso_configs.{col}: {e}"))
}

fn config_row(row: &AnyRow) -> Result<SsoSignInConfig> {
    let field_mapping: FieldMapping = serde_json::from_str(&get_str(row, "field_mapping")?)
        .map_err(|e| corrupt("field_mapping", e))?;
    let default_role_ids: Vec<i64> = serde_json::from_str(&get_str(row, "default_role_ids")?)
        .map_err(|e| corrupt("default_role_ids", e))?;
    let settings: StoredSettings =
        serde_json::from_str(&get_str(row, "settings")?).map_err(|e| corrupt("settings", e))?;
    let secret = get_str(row, "secret")?;
    Ok(SsoSignInConfig {
        account_id: get_i64(row, "account_id")?,
        config: SsoConfig {
            enabled: get_i64(row, "enabled")? != 0,
            protocol: get_str(row, "protocol")?,
            login_domain: get_str(row, "login_domain")?,
            create_account_on_login: get_i64(row, "create_account_on_login")? != 0,
            field_mapping,
            default_role_ids,
            oidc: settings.oidc,
            ldap: settings.ldap,
            cas: settings.cas,
            saml: settings.saml,
            team_mapping: settings.team_mapping,
            has_secret: !secret.is_empty(),
        },
        secret,
    })
}

async fn find_member_by_email(
    conn: &mut AnyConnection,
    account_id: i64,
    email: &str,
) -> Result<Option<i64>> {
    let mut sql = Sql::new("SELECT member_id FROM members WHERE account_id = ");
    sql.bind(account_id)
        .push(" AND status <> 'deleted' AND email <> '' AND LOWER(email) = ")
        .bind(email.to_lowercase())
        .push(" ORDER BY member_id LIMIT 1");
    match sql.query_on(conn).fetch_optional(&mut *conn).await? {
        Some(row) => Ok(Some(get_i64(&row, "member_id")?)),
        None => Ok(None),
    }
}

impl Store {
    async fn opened_sso(&self, mut c: SsoSignInConfig) -> Result<SsoSignInConfig> {
        c.secret = self
            .open_secret(secret_slot(c.account_id), &c.secret)
            .await?;
        Ok(c)
    }

    /// The account's SSO configuration, without its secret (RSP-570: reads never return it).
    pub async fn sso_config(&self, account_id: i64) -> Result<Option<SsoConfig>> {
        let mut sql = Sql::new("SELECT ");
        sql.push(COLUMNS)
            .push(" FROM sso_configs WHERE account_id = ")
            .bind(account_id);
        match sql.query().fetch_optional(&self.inner.read).await? {
            Some(row) => Ok(Some(config_row(&row)?.config)),
            None => Ok(None),
        }
    }

    /// The stored secret of the account's SSO configuration ('' when none): only for
    /// checking a configuration against its identity provider, never answered.
    pub async fn sso_secret(&self, account_id: i64) -> Result<String> {
        let mut sql = Sql::new("SELECT secret FROM sso_configs WHERE account_id = ");
        sql.bind(account_id);
        match sql.query().fetch_optional(&self.inner.read).await? {
            Some(row) => {
                self.open_secret(secret_slot(account_id), &get_str(&row, "secret")?)
                    .await
            }
            None => Ok(String::new()),
        }
    }

    /// The configuration a sign-in at `login_domain` uses, with its account and secret.
    pub async fn sso_config_by_domain(
        &self,
        login_domain: &str,
    ) -> Result<Option<SsoSignInConfig>> {
        let mut sql = Sql::new("SELECT ");
        sql.push(COLUMNS)
            .push(" FROM sso_configs WHERE login_domain = ")
            .bind(login_domain);
        match sql.query().fetch_optional(&self.inner.read).await? {
            Some(row) => Ok(Some(self.opened_sso(config_row(&row)?).await?)),
            None => Ok(None),
        }
    }

    /// Writes the account's SSO configuration. `secret: None` keeps the stored secret. A login
    /// domain another account uses is refused with `Conflict` (RSP-571) and nothing changes.
    pub async fn put_sso_config(
        &self,
        account_id: i64,
        config: &SsoConfig,
        secret: Option<&str>,
        now: Millis,
    ) -> Result<Outcome<()>> {
        // A new secret is sealed; a kept one stays as stored (sealed for this same row).
        let new_secret = match secret {
            Some(plain) => Some(seal_value(
                self.sealing_key(account_id, now).await?.as_ref(),
                &secret_slot(account_id),
                plain,
            )?),
            None => None,
        };
        let mut tx = self.inner.write.begin().await?;
        let mut sql = Sql::new("SELECT account_id FROM sso_configs WHERE login_domain = ");
        sql.bind(config.login_domain.as_str())
            .push(" AND account_id <> ")
            .bind(account_id);
        if sql.query_on(&tx).fetch_optional(&mut *tx).await?.is_some() {
            return Ok(Err(Refusal::Conflict(format!(
                "login_domain: {} is already used by another account",
                config.login_domain
            ))));
        }
        let mut sql = Sql::new("SELECT secret FROM sso_configs WHERE account_id = ");
        sql.bind(account_id);
        let stored = match sql.query_on(&tx).fetch_optional(&mut *tx).await? {
            Some(row) => Some(get_str(&row, "secret")?),
            None => None,
        };
        let secret = new_secret.or_else(|| stored.clone()).unwrap_or_default();
        let sql = if stored.is_some() {
            let mut sql = Sql::new("UPDATE sso_configs SET enabled = ");
            sql.bind(i64::from(config.enabled))
                .push(", protocol = ")
                .bind(config.protocol.as_str())
                .push(", login_domain = ")
                .bind(config.login_domain.as_str())
                .push(", create_account_on_login = ")
                .bind(i64::from(config.create_account_on_login))
                .push(", field_mapping = ")
                .bind(to_json(&config.field_mapping)?)
                .push(", default_role_ids = ")
                .bind(to_json(&config.default_role_ids)?)
                .push(", settings = ")
                .bind(settings_json(config)?)
                .push(", secret = ")
                .bind(secret)
                .push(", updated_at = ")
                .bind(now)
                .push(" WHERE account_id = ")
                .bind(account_id);
            sql
        } else {
            let mut sql = Sql::new("INSERT INTO sso_configs (");
            sql.push(COLUMNS)
                .push(", created_at, updated_at) VALUES (")
                .bind(account_id)
                .push(", ")
                .bind(i64::from(config.enabled))
                .push(", ")
                .bind(config.protocol.as_str())
                .push(", ")
                .bind(config.login_domain.as_str())
                .push(", ")
                .bind(i64::from(config.create_account_on_login))
                .push(", ")
                .bind(to_json(&config.field_mapping)?)
                .push(", ")
                .bind(to_json(&config.default_role_ids)?)
                .push(", ")
                .bind(settings_json(config)?)
                .push(", ")
                .bind(secret)
                .push(", ")
                .bind(now)
                .push(", ")
                .bind(now)
                .push(")");
            sql
        };
        match sql.query_on(&tx).execute(&mut *tx).await {
            Ok(_) => {}
            // Two accounts racing for one domain: the unique index decides.
            Err(e) if unique_violation(&e) => {
                return Ok(Err(Refusal::Conflict(format!(
                    "login_domain: {} is already used by another account",
                    config.login_domain
                ))));
            }
            Err(e) => return Err(e.into()),
        }
        tx.commit().await?;
        Ok(Ok(()))
    }

    /// Records a sign-in sent to the identity provider; the callback takes it back with
    /// [`Store::take_sso_login`]. Expired ones are purged on the way.
    pub async fn start_sso_login(
        &self,
        state: &str,
        login: &SsoLogin,
        now: Millis,
        ttl_ms: Millis,
    ) -> Result<()> {
        let mut tx = self.inner.write.begin().await?;
        let mut sql = Sql::new("DELETE FROM sso_logins WHERE expires_at <= ");
        sql.bind(now);
        sql.query_on(&tx).execute(&mut *tx).await?;
        let mut sql = Sql::new(
            "INSERT INTO sso_logins (state_hash, account_id, login_domain, nonce, \
             code_verifier, next_path, created_at, expires_at) VALUES (",
        );
        sql.bind(hash_secret(state))
            .push(", ")
            .bind(login.account_id)
            .push(", ")
            .bind(login.login_domain.as_str())
            .push(", ")
            .bind(login.nonce.as_str())
            .push(", ")
            .bind(login.code_verifier.as_str())
            .push(", ")
            .bind(login.next_path.as_str())
            .push(", ")
            .bind(now)
            .push(", ")
            .bind(now + ttl_ms)
            .push(")");
        sql.query_on(&tx).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The live sign-in of a `state`, removed so it can be used once. `None` when unknown,
    /// already used or expired.
    pub async fn take_sso_login(&self, state: &str, now: Millis) -> Result<Option<SsoLogin>> {
        let mut tx = self.inner.write.begin().await?;
        let mut sql = Sql::new(
            "SELECT account_id, login_domain, nonce, code_verifier, next_path, expires_at \
             FROM sso_logins WHERE state_hash = ",
        );
        sql.bind(hash_secret(state));
        let Some(row) = sql.query_on(&tx).fetch_optional(&mut *tx).await? else {
            return Ok(None);
        };
        let mut del = Sql::new("DELETE FROM sso_logins WHERE state_hash = ");
        del.bind(hash_secret(state));
        del.query_on(&tx).execute(&mut *tx).await?;
        tx.commit().await?;
        if get_i64(&row, "expires_at")? <= now {
            return Ok(None);
        }
        Ok(Some(SsoLogin {
            account_id: get_i64(&row, "account_id")?,
            login_domain: get_str(&row, "login_domain")?,
            nonce: get_str(&row, "nonce")?,
            code_verifier: get_str(&row, "code_verifier")?,
            next_path: get_str(&row, "next_path")?,
        }))
    }

    /// Records that a SAML assertion was used to sign in (RSP-574): `true` the first time,
    /// `false` when the account already saw this assertion ID (a replay). The ID is kept
    /// until `expires_at`; expired ones are purged on the way.
    pub async fn use_saml_assertion(
        &self,
        account_id: i64,
        assertion_id: &str,
        expires_at: Millis,
        now: Millis,
    ) -> Result<bool> {
        let mut tx = self.inner.write.begin().await?;
        let mut sql = Sql::new("DELETE FROM saml_assertions WHERE expires_at <= ");
        sql.bind(now);
        sql.query_on(&tx).execute(&mut *tx).await?;
        let mut sql =
            Sql::new("INSERT INTO saml_assertions (account_id, assertion_id, expires_at) VALUES (");
        sql.bind(account_id)
            .push(", ")
            .bind(assertion_id)
            .push(", ")
            .bind(expires_at.max(now + 1))
            .push(") ON CONFLICT (account_id, assertion_id) DO NOTHING");
        let done = sql.query_on(&tx).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    /// The member a successful SSO sign-in logs in (RSP-572, RSP-573): the live member with
    /// this email (case-insensitive), left as it is; otherwise, when `create` is true, a new
    /// enabled member with the mapped name and phone, `role_ids`, no teams, the email verified
    /// and the phone not. `Ok(None)`: no member and `create` is false ("not invited").
    pub async fn sso_member(
        &self,
        account_id: i64,
        user: &MappedUser,
        create: bool,
        role_ids: &[i64],
        now: Millis,
    ) -> Result<Outcome<Option<SsoMember>>> {
        let mut tx = self.inner.write.begin().await?;
        let conn: &mut AnyConnection = &mut tx;
        if let Some(member_id) = find_member_by_email(conn, account_id, &user.email).await? {
            return Ok(Ok(Some(SsoMember {
                member_id,
                created: false,
            })));
        }
        if !create {
            return Ok(Ok(None));
        }
        // RSP-552: a phone another member uses is not taken over; the member is created
        // without it.
        let mut phone = user.phone.clone();
        if !phone.is_empty() {
            let mut sql = Sql::new("SELECT member_id FROM members WHERE account_id = ");
            sql.bind(account_id)
                .push(" AND status <> 'deleted' AND phone = ")
                .bind(phone.as_str());
            if sql
                .query_on(conn)
                .fetch_optional(&mut *conn)
                .await?
                .is_some()
            {
                phone.clear();
            }
        }
        // A new member speaks the account's language and lives in its time zone.
        let mut sql = Sql::new("SELECT locale, time_zone FROM accounts WHERE account_id = ");
        sql.bind(account_id);
        let Some(account) = sql.query_on(conn).fetch_optional(&mut *conn).await? else {
            return Ok(Err(Refusal::NotFound(format!(
                "account {account_id} not found"
            ))));
        };
        let locale = get_str(&account, "locale")?;
        let time_zone = get_str(&account, "time_zone")?;
        let row = MemberRow {
            account_id,
            member_name: &user.name,
            email: &user.email,
            status: STATUS_ENABLED,
            role_ids,
            locale: &locale,
            time_zone: &time_zone,
            phone: &phone,
            country_code: "",
            ref_id: "",
            email_verified: true,
            activated_at: now,
            now,
        };
        let member_id = match insert_member_row(conn, &row, "email").await? {
            Ok(id) => id,
            Err(r) => return Ok(Err(r)),
        };
        tx.commit().await?;
        Ok(Ok(Some(SsoMember {
            member_id,
            created: true,
        })))
    }

    /// Adds a member who signed in with SSO to the teams its team mapping names (by exact
    /// team name). Nothing is removed. Returns the teams joined now and the names that match
    /// no team of the account.
    pub async fn sso_join_teams(
        &self,
        account_id: i64,
        member_id: i64,
        team_names: &[String],
        now: Millis,
    ) -> Result<(Vec<String>, Vec<String>)> {
        let mut joined = Vec::new();
        let mut unknown = Vec::new();
        if team_names.is_empty() {
            return Ok((joined, unknown));
        }
        let mut tx = self.inner.write.begin().await?;
        for name in team_names {
            let mut sql = Sql::new("SELECT team_id FROM teams WHERE account_id = ");
            sql.bind(account_id)
                .push(" AND team_name = ")
                .bind(name.as_str());
            let Some(row) = sql.query_on(&tx).fetch_optional(&mut *tx).await? else {
                unknown.push(name.clone());
                continue;
            };
            let team_id = get_i64(&row, "team_id")?;
            // Two sign-ins of one member at once: the primary key keeps one row.
            let mut sql =
                Sql::new("INSERT INTO team_members (account_id, team_id, member_id) VALUES (");
            sql.bind(account_id)
                .push(", ")
                .bind(team_id)
                .push(", ")
                .bind(member_id)
                .push(") ON CONFLICT (team_id, member_id) DO NOTHING");
            let done = sql.query_on(&tx).execute(&mut *tx).await?;
            if done.rows_affected() == 0 {
                continue;
            }
            let mut sql = Sql::new("UPDATE teams SET updated_at = ");
            sql.bind(now).push(" WHERE team_id = ").bind(team_id);
            sql.query_on(&tx).execute(&mut *tx).await?;
            joined.push(name.clone());
        }
        tx.commit().await?;
        Ok((joined, unknown))
    }
}
