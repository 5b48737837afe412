//! Configuration: defaults, then a TOML file, then `KLAXON_*` environment variables, then
//! command-line flags (DESIGN.md "Config"). Every key is documented in docs/configuration.md.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use klaxon_core::ratelimit::PushLimits;
use serde::Deserialize;

/// The whole configuration of one node.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address the HTTP server binds; port 0 picks a free one.
    pub listen: SocketAddr,
    /// Directory of the embedded SQLite database (and other local state).
    pub data_dir: PathBuf,
    /// `postgres://…` selects PostgreSQL; empty means SQLite in `data_dir`.
    pub database_url: String,
    /// URL printed in the start-up banner and used in links; empty = derived from `listen`.
    pub public_url: String,
    /// Push rate limits (ING-007); 0 switches one limit off.
    pub limits: PushLimits,
    /// Open API rate limits per account (openapi-compat.md 1.8); 0 switches one off.
    pub api_limits: ApiLimits,
    pub storage: StorageConfig,
    pub workers: WorkersConfig,
    /// Notification delivery and its providers (docs/notifications.md).
    pub notify: klaxon_notify::NotifyConfig,
    /// Console sign-in: sessions and lockout (docs/sign-in.md).
    pub auth: AuthConfig,
    /// The built-in SMTP receiver of e-mail integrations (docs/integrations.md).
    pub smtp: SmtpConfig,
    /// Self-hosted (default) or SaaS, and the SaaS operator settings (docs/saas.md).
    pub deployment: DeploymentConfig,
    /// HTTP pull integrations (docs/http-pull.md).
    pub pull: PullConfig,
}

/// `[pull]`: outbound requests of HTTP pull integrations (ingest.md ING-223, ING-230).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PullConfig {
    /// Refuse pull URLs whose address is loopback, private, link-local or unspecified
    /// (ING-230; the pull fails with `URL access denied`). Off by default for self-hosted
    /// installs, whose monitoring usually lives on the private network.
    pub deny_private_targets: bool,
    /// Pause between the attempts of a failed page (ING-223: 1 s).
    pub retry_delay_ms: u64,
}

impl Default for PullConfig {
    fn default() -> Self {
        PullConfig {
            deny_private_targets: false,
            retry_delay_ms: 1000,
        }
    }
}

/// `[deployment]`: self-hosted (the default: none of the service-agreement rules) or SaaS
/// (docs/saas.md). SaaS refuses to start without what SVC-400 requires.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeploymentConfig {
    pub mode: Mode,
    /// The region this deployment serves (§14: one deployment per region).
    pub region: String,
    /// The operator's legal identity, as named in the agreement documents.
    pub operator_identity: String,
    /// IANA zone of every calendar rule ("day", "month", due dates).
    pub billing_tz: String,
    /// The tenants' billing currency: `CNY`, `USD` or `JPY`.
    pub currency: String,
    pub support_address: String,
    /// IANA zone of support service hours (SVC-172); empty = `billing_tz`.
    pub support_tz: String,
    /// Support-calendar holidays (`YYYY-MM-DD`): no Standard service hours on them.
    pub support_holidays: Vec<String>,
    /// Holidays of the operator's working-day calendar (`YYYY-MM-DD`), Monday–Friday
    /// otherwise: they move the SLA claim window (SVC-280).
    pub working_holidays: Vec<String>,
    /// Edition recorded for a tenant whose billing row an operator creates.
    pub default_edition: String,
    /// The operator's regions (SVC-210): `[[deployment.regions]]` with `id`, `name` and
    /// `base_url`. This deployment serves `region`; registrations for the others are sent to
    /// their base URL (docs/registration.md).
    pub regions: Vec<RegionConfig>,
    /// Versions of the agreement documents in force (SVC-400 requires each).
    pub documents: DocumentsConfig,
    /// Licence unit prices of the price list in force (SVC-080).
    pub licence_prices: LicencePricesConfig,
    /// Communication allowances and unit prices of the price list in force (SVC-071/073).
    pub communication: CommunicationConfig,
    /// The key-encryption key that wraps every tenant's data key (SVC-185): 64 hex digits.
    /// Required in SaaS mode; never printed (docs/backup.md).
    pub key_encryption_key: SecretText,
}

/// One `[[deployment.regions]]` entry (SVC-210).
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegionConfig {
    pub id: String,
    pub name: String,
    pub base_url: String,
}

/// A secret setting: its `Debug` output never shows the value.
#[derive(Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(transparent)]
pub struct SecretText(pub String);

impl std::fmt::Debug for SecretText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.is_empty() {
            f.write_str("\"\"")
        } else {
            f.write_str("\"<redacted>\"")
        }
    }
}

/// `[deployment.licence_prices]`: the price of one licence for one term, as decimal strings
/// in the billing currency (SVC-080); empty = that edition/term is not sold. The only price
/// the sources give is Pro at 199 a month (CMP), the default.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LicencePricesConfig {
    pub standard_monthly: String,
    pub standard_annual: String,
    pub pro_monthly: String,
    pub pro_annual: String,
    /// Postpaid price per active member and cycle (SVC-059); empty = postpaid not offered.
    pub standard_postpaid: String,
    pub pro_postpaid: String,
}

impl Default for LicencePricesConfig {
    fn default() -> Self {
        LicencePricesConfig {
            standard_monthly: String::new(),
            standard_annual: String::new(),
            pro_monthly: "199.00".to_string(),
            pro_annual: String::new(),
            standard_postpaid: String::new(),
            pro_postpaid: String::new(),
        }
    }
}

/// `[deployment.communication]`: per unit type (SMS, voice call, e-mail) the allowance each
/// licence brings to a cycle's pool, the trial's fixed allowance, and the overage unit price
/// as a decimal string (SVC-070 … SVC-073). All zero by default: nothing is metered until the
/// operator prices it. E-mail priced 0 is never metered.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CommunicationConfig {
    pub sms_per_licence: u64,
    pub voice_per_licence: u64,
    pub email_per_licence: u64,
    pub trial_sms: u64,
    pub trial_voice: u64,
    pub trial_email: u64,
    pub sms_price: String,
    pub voice_price: String,
    pub email_price: String,
    /// SVC-074: how far the funds may go below zero for overage units (a decimal string;
    /// default 0 — a unit the funds do not cover is skipped).
    pub overdraft_limit: String,
    /// SVC-072: the communication packs on sale.
    pub packs: Vec<PackConfig>,
}

/// `[[deployment.communication.packs]]`: a pack of `units` units of `unit` (`sms`, `voice`
/// or `email`) for `price`, usable for `months` months after the purchase.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PackConfig {
    pub unit: String,
    pub units: u64,
    pub price: String,
    pub months: i32,
}

/// `[deployment.documents]`: the version label of each document in force; empty = none.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DocumentsConfig {
    pub terms_of_service: String,
    pub user_agreement: String,
    pub data_protection: String,
    pub sla: String,
    pub price_list: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    #[default]
    SelfHosted,
    /// `cloud` is the spec's word for the same mode.
    #[serde(alias = "cloud")]
    Saas,
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "self_hosted" => Ok(Mode::SelfHosted),
            "saas" | "cloud" => Ok(Mode::Saas),
            other => Err(format!("{other:?} is not self_hosted or saas")),
        }
    }
}

impl Default for DeploymentConfig {
    fn default() -> Self {
        DeploymentConfig {
            mode: Mode::SelfHosted,
            region: String::new(),
            operator_identity: String::new(),
            billing_tz: "UTC".to_string(),
            currency: "CNY".to_string(),
            support_address: String::new(),
            support_tz: String::new(),
            support_holidays: Vec::new(),
            working_holidays: Vec::new(),
            default_edition: "standard".to_string(),
            regions: Vec::new(),
            documents: DocumentsConfig::default(),
            licence_prices: LicencePricesConfig::default(),
            communication: CommunicationConfig::default(),
            key_encryption_key: SecretText::default(),
        }
    }
}

impl DeploymentConfig {
    /// Self-hosted: `Ok(None)`, nothing is checked. SaaS: the SVC-400 start-up check, then
    /// the settings the billing store needs; the error names the first bad setting.
    pub fn saas_settings(&self) -> Result<Option<klaxon_store::SaasSettings>, String> {
        if self.mode == Mode::SelfHosted {
            return Ok(None);
        }
        let some = |s: &str| (!s.trim().is_empty()).then(|| s.to_string());
        let startup = klaxon_saas::mode::CloudStartup {
            operator_identity: some(&self.operator_identity),
            regions: some(&self.region).into_iter().collect(),
            billing_tz: some(&self.billing_tz),
            terms_of_service_in_force: some(&self.documents.terms_of_service).is_some(),
            user_agreement_in_force: some(&self.documents.user_agreement).is_some(),
            data_protection_in_force: some(&self.documents.data_protection).is_some(),
            sla_in_force: some(&self.documents.sla).is_some(),
            price_list: some(&self.documents.price_list).is_some(),
            support_address: some(&self.support_address),
        };
        startup
            .check()
            .map_err(|e| format!("deployment (mode = saas): {e}"))?;
        let billing_tz = jiff::tz::TimeZone::get(&self.billing_tz)
            .map_err(|e| format!("deployment.billing_tz: {e}"))?;
        let currency = klaxon_saas::codec::currency(&self.currency)
            .map_err(|e| format!("deployment.currency: {e}"))?;
        if self.default_edition.trim().is_empty() {
            return Err("deployment.default_edition: must not be empty".into());
        }
        self.support_calendar()?;
        self.working_days()?;
        self.regions()?;
        let mut params = klaxon_saas::params::Params::cloud_defaults();
        let overdraft = self.communication.overdraft_limit.trim();
        if !overdraft.is_empty() {
            params.comm_overdraft_limit =
                klaxon_saas::money::parse_decimal("overdraft_limit", overdraft)
                    .map_err(|e| format!("deployment.communication.overdraft_limit: {e}"))?;
        }
        params.validate().map_err(|e| format!("deployment: {e}"))?;
        self.licence_price_list()?;
        self.communication_plan()?;
        if self.kek()?.is_none() {
            return Err(
                "deployment.key_encryption_key: required in SaaS mode (64 hex digits, \
                 e.g. from `openssl rand -hex 32`; docs/backup.md)"
                    .into(),
            );
        }
        Ok(Some(klaxon_store::SaasSettings {
            params,
            billing_tz,
            currency,
            region: self.region.trim().to_string(),
            default_edition: self.default_edition.clone(),
        }))
    }
}

impl DeploymentConfig {
    /// This deployment's region and the operator's other regions (SVC-210); a bad entry
    /// names its setting.
    pub fn regions(&self) -> Result<klaxon_saas::region::Regions, String> {
        let own = klaxon_saas::region::Region {
            id: self.region.trim().to_string(),
            name: String::new(),
            base_url: String::new(),
        };
        let known = self
            .regions
            .iter()
            .map(|r| klaxon_saas::region::Region {
                id: r.id.clone(),
                name: r.name.trim().to_string(),
                base_url: r.base_url.clone(),
            })
            .collect();
        klaxon_saas::region::Regions::new(own, known)
            .map_err(|e| format!("deployment.regions: {e}"))
    }

    /// The support time zone and holidays (SVC-172); a bad value names its setting.
    pub fn support_calendar(
        &self,
    ) -> Result<
        (
            jiff::tz::TimeZone,
            std::collections::BTreeSet<jiff::civil::Date>,
        ),
        String,
    > {
        let zone = if self.support_tz.trim().is_empty() {
            self.billing_tz.trim()
        } else {
            self.support_tz.trim()
        };
        let tz = jiff::tz::TimeZone::get(zone)
            .map_err(|e| format!("deployment.support_tz: {zone:?}: {e}"))?;
        let holidays = self
            .support_holidays
            .iter()
            .map(|d| {
                d.trim()
                    .parse::<jiff::civil::Date>()
                    .map_err(|e| format!("deployment.support_holidays: {d:?}: {e}"))
            })
            .collect::<Result<_, String>>()?;
        Ok((tz, holidays))
    }

    /// The operator's working-day calendar (SVC-280): Monday–Friday without
    /// `working_holidays`. A bad date names its setting.
    pub fn working_days(&self) -> Result<klaxon_saas::calendar::WorkingDays, String> {
        let mut cal = klaxon_saas::calendar::WorkingDays::monday_to_friday();
        for d in &self.working_holidays {
            let day = d
                .trim()
                .parse::<jiff::civil::Date>()
                .map_err(|e| format!("deployment.working_holidays: {d:?}: {e}"))?;
            cal.holidays.insert(day);
        }
        Ok(cal)
    }

    /// The key-encryption key of tenant data keys, if one is set (SVC-185). A bad value is
    /// an error naming the setting, never repeating the value.
    pub fn kek(&self) -> Result<Option<crate::backup::Kek>, String> {
        let text = self.key_encryption_key.0.trim();
        if text.is_empty() {
            return Ok(None);
        }
        crate::backup::Kek::parse(text)
            .map(Some)
            .map_err(|e| format!("deployment.key_encryption_key: {e}"))
    }

    /// The communication items of the price list in force (`deployment.communication`); a
    /// unit type with neither an allowance nor a price is left out. A bad price names its key.
    pub fn communication_plan(&self) -> Result<klaxon_store::CommPlan, String> {
        use klaxon_saas::quota::UnitType;
        let c = &self.communication;
        let mut units = Vec::new();
        for (key, unit, per_licence, trial, price) in [
            (
                "sms_price",
                UnitType::Sms,
                c.sms_per_licence,
                c.trial_sms,
                &c.sms_price,
            ),
            (
                "voice_price",
                UnitType::Voice,
                c.voice_per_licence,
                c.trial_voice,
                &c.voice_price,
            ),
            (
                "email_price",
                UnitType::Email,
                c.email_per_licence,
                c.trial_email,
                &c.email_price,
            ),
        ] {
            let price = if price.trim().is_empty() {
                rust_decimal::Decimal::ZERO
            } else {
                klaxon_saas::money::parse_decimal("price", price.trim())
                    .map_err(|e| format!("deployment.communication.{key}: {e}"))?
            };
            if price.is_sign_negative() {
                return Err(format!(
                    "deployment.communication.{key}: must not be negative"
                ));
            }
            if price.is_zero() && per_licence == 0 && trial == 0 {
                continue;
            }
            units.push(klaxon_store::CommUnit {
                unit,
                per_licence,
                trial,
                price,
            });
        }
        let mut packs = Vec::new();
        for (i, p) in c.packs.iter().enumerate() {
            let key = format!("deployment.communication.packs[{i}]");
            let unit = match p.unit.trim() {
                "sms" => UnitType::Sms,
                "voice" => UnitType::Voice,
                "email" => UnitType::Email,
                other => return Err(format!("{key}.unit: {other:?} is not sms, voice or email")),
            };
            if p.units == 0 {
                return Err(format!("{key}.units: must be at least 1"));
            }
            if !(1..=36).contains(&p.months) {
                return Err(format!("{key}.months: must be between 1 and 36"));
            }
            let price = klaxon_saas::money::parse_decimal("price", p.price.trim())
                .map_err(|e| format!("{key}.price: {e}"))?;
            if price.is_sign_negative() {
                return Err(format!("{key}.price: must not be negative"));
            }
            packs.push(klaxon_store::CommPack {
                unit,
                units: p.units,
                price,
                months: p.months,
            });
        }
        Ok(klaxon_store::CommPlan { units, packs })
    }

    /// The licence items of the price list in force (`deployment.licence_prices`, labelled
    /// `deployment.documents.price_list`), as the SKUs `klaxon_store::licence_sku` names.
    /// A bad price names its key.
    pub fn licence_price_list(&self) -> Result<klaxon_saas::order::PriceListVersion, String> {
        let p = &self.licence_prices;
        let mut items = Vec::new();
        for (key, edition, months, text) in [
            ("standard_monthly", "standard", 1, &p.standard_monthly),
            ("standard_annual", "standard", 12, &p.standard_annual),
            ("pro_monthly", "pro", 1, &p.pro_monthly),
            ("pro_annual", "pro", 12, &p.pro_annual),
        ] {
            if text.trim().is_empty() {
                continue;
            }
            let price = klaxon_saas::money::parse_decimal("price", text.trim())
                .map_err(|e| format!("deployment.licence_prices.{key}: {e}"))?;
            items.push((klaxon_store::licence_sku(edition, months), price));
        }
        for (key, edition, text) in [
            ("standard_postpaid", "standard", &p.standard_postpaid),
            ("pro_postpaid", "pro", &p.pro_postpaid),
        ] {
            if text.trim().is_empty() {
                continue;
            }
            let price = klaxon_saas::money::parse_decimal("price", text.trim())
                .map_err(|e| format!("deployment.licence_prices.{key}: {e}"))?;
            items.push((klaxon_store::postpaid_sku(edition), price));
        }
        let list = klaxon_saas::order::PriceListVersion {
            id: self.documents.price_list.trim().to_string(),
            published_at: jiff::Timestamp::UNIX_EPOCH,
            effective_at: jiff::Timestamp::UNIX_EPOCH,
            items,
        };
        list.validate()
            .map_err(|e| format!("deployment.licence_prices: {e}"))?;
        Ok(list)
    }
}

/// Console sign-in (docs/sign-in.md).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// How long a session lasts after sign-in, in minutes (absolute, not sliding).
    pub session_ttl_minutes: i64,
    /// `Secure` on the session cookie: `true`, `false`, or absent = when `public_url` is https.
    pub secure_cookie: Option<bool>,
    /// Failed sign-ins of one e-mail address within `failure_window_minutes` that lock it.
    pub max_failures: i64,
    pub failure_window_minutes: i64,
    /// How long a locked address is refused (423 `RequestLocked`), in minutes.
    pub lockout_minutes: i64,
    /// Sign-in attempts per second on one node, whatever the address (429 beyond); 0 = off.
    pub attempts_per_second: u32,
    /// How long audit records are kept, in days (RSP-603, OQ-39): 90 by default, never
    /// less than 30 (smaller values count as 30).
    pub audit_retention_days: i64,
    /// How long a password-reset token works, in minutes (docs/sign-in.md).
    pub reset_ttl_minutes: i64,
    /// Reset e-mails per member per hour; further requests get the same answer, no e-mail.
    pub resets_per_hour: i64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            session_ttl_minutes: 12 * 60,
            secure_cookie: None,
            max_failures: 5,
            failure_window_minutes: 15,
            lockout_minutes: 15,
            attempts_per_second: 10,
            audit_retention_days: crate::audit::DEFAULT_RETENTION_DAYS,
            reset_ttl_minutes: 30,
            resets_per_hour: 3,
        }
    }
}

/// `[smtp]`: the SMTP receiver of e-mail integrations (ingest.md ING-210, ING-211).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmtpConfig {
    /// Address the receiver binds (`127.0.0.1:2525`); unset = no SMTP receiver.
    pub listen: Option<SocketAddr>,
    /// Mail domain of e-mail integration addresses (`<integration_key>@<domain>`).
    pub domain: String,
    /// Largest message accepted, in bytes (ING-211: 5 MiB); larger ones get 552.
    pub max_message_bytes: usize,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        SmtpConfig {
            listen: None,
            domain: "klaxon.local".to_string(),
            max_message_bytes: klaxon_sources::email::MAX_MESSAGE_BYTES,
        }
    }
}

/// Which background workers this node runs.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkersConfig {
    /// Process the event inbox (alerts and incidents). Turn it off on nodes that should only
    /// accept pushes and serve the API; at least one node must keep it on, or accepted events
    /// wait in the inbox.
    pub inbox: bool,
    /// Run due incident timers (escalations, repeats, snooze ends, delayed assignments,
    /// auto-close). Any number of nodes may run them: each step is claimed by one node and
    /// applied once.
    pub timers: bool,
    /// Deliver queued notifications (e-mail, SMS, voice, chat bots). Any number of nodes may
    /// run it: each notification is claimed by one node at a time.
    pub delivery: bool,
    /// How often an idle delivery or outbound webhook worker looks for rows queued by other
    /// nodes or coming out of back-off (milliseconds, at least 10). This node's own commits
    /// wake its workers at once, so the interval bounds only cross-node latency.
    pub idle_poll_ms: u64,
}

impl WorkersConfig {
    /// [`WorkersConfig::idle_poll_ms`] as a duration, never below 10 ms.
    pub fn idle_poll(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.idle_poll_ms.max(10))
    }
}

impl Default for WorkersConfig {
    fn default() -> Self {
        WorkersConfig {
            inbox: true,
            timers: true,
            delivery: true,
            idle_poll_ms: 250,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// SQLite `synchronous = FULL` (true) or `NORMAL` (false).
    pub sqlite_synchronous_full: bool,
    /// Connections in the database pool.
    pub max_connections: u32,
    /// Most events one inbox processing transaction handles.
    pub process_batch: usize,
}

/// Open API limits per account (openapi-compat.md 1.8 defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiLimits {
    pub per_account_per_second: u32,
    pub per_account_per_minute: u32,
}

impl Default for ApiLimits {
    fn default() -> Self {
        ApiLimits {
            per_account_per_second: 50,
            per_account_per_minute: 1000,
        }
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            sqlite_synchronous_full: true,
            max_connections: 8,
            process_batch: 512,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("klaxon-data"),
            database_url: String::new(),
            public_url: String::new(),
            limits: PushLimits::default(),
            api_limits: ApiLimits::default(),
            storage: StorageConfig::default(),
            workers: WorkersConfig::default(),
            notify: klaxon_notify::NotifyConfig::default(),
            auth: AuthConfig::default(),
            smtp: SmtpConfig::default(),
            deployment: DeploymentConfig::default(),
            pull: PullConfig::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is invalid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("environment variable {name} is invalid: {message}")]
    Env { name: String, message: String },
}

impl Config {
    /// Defaults overlaid with a TOML file.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::from_toml(&text).map_err(|message| ConfigError::Parse {
            path: path.to_path_buf(),
            message,
        })
    }

    pub fn from_toml(text: &str) -> Result<Config, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// Overlays `KLAXON_*` variables from `vars` (usually `std::env::vars()`).
    pub fn apply_env(
        &mut self,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<(), ConfigError> {
        for (name, value) in vars {
            let bad = |message: String| ConfigError::Env {
                name: name.clone(),
                message,
            };
            match name.as_str() {
                "KLAXON_LISTEN" => self.listen = value.parse().map_err(|e| bad(format!("{e}")))?,
                "KLAXON_DATA_DIR" => self.data_dir = PathBuf::from(&value),
                "KLAXON_DATABASE_URL" => self.database_url = value,
                "KLAXON_PUBLIC_URL" => self.public_url = value,
                "KLAXON_SMTP_LISTEN" => {
                    self.smtp.listen = if value.is_empty() {
                        None
                    } else {
                        Some(value.parse().map_err(|e| bad(format!("{e}")))?)
                    }
                }
                "KLAXON_SMTP_DOMAIN" => self.smtp.domain = value,
                "KLAXON_DEPLOYMENT_MODE" => self.deployment.mode = value.parse().map_err(bad)?,
                "KLAXON_DEPLOYMENT_REGION" => self.deployment.region = value,
                "KLAXON_DEPLOYMENT_KEY_ENCRYPTION_KEY" => {
                    self.deployment.key_encryption_key = SecretText(value)
                }
                "KLAXON_SMTP_MAX_MESSAGE_BYTES" => {
                    self.smtp.max_message_bytes = value.parse().map_err(|e| bad(format!("{e}")))?
                }
                "KLAXON_LIMITS_PER_INTEGRATION_PER_SECOND" => {
                    self.limits.per_integration_per_second =
                        value.parse().map_err(|e| bad(format!("{e}")))?
                }
                "KLAXON_LIMITS_PER_INTEGRATION_PER_MINUTE" => {
                    self.limits.per_integration_per_minute =
                        value.parse().map_err(|e| bad(format!("{e}")))?
                }
                "KLAXON_LIMITS_PER_ACCOUNT_PER_SECOND" => {
                    self.limits.per_account_per_second =
                        value.parse().map_err(|e| bad(format!("{e}")))?
                }
                "KLAXON_STORAGE_SQLITE_SYNCHRONOUS_FULL" => {
                    self.storage.sqlite_synchronous_full =
                        value.parse().map_err(|e| bad(format!("{e}")))?
                }
                "KLAXON_WORKERS_INBOX" => {
                    self.workers.inbox = value.parse().map_err(|e| bad(format!("{e}")))?
                }
                "KLAXON_API_LIMITS_PER_ACCOUNT_PER_SECOND" => {
                    self.api_limits.per_account_per_second =
                        value.parse().map_err(|e| bad(format!("{e}")))?
                }
                "KLAXON_API_LIMITS_PER_ACCOUNT_PER_MINUTE" => {
                    self.api_limits.per_account_per_minute =
                        value.parse().map_err(|e| bad(format!("{e}")))?
                }
                "KLAXON_WORKERS_TIMERS" => {
                    self.workers.timers = value.parse().map_err(|e| bad(format!("{e}")))?
                }
                "KLAXON_PULL_DENY_PRIVATE_TARGETS" => {
                    self.pull.deny_private_targets =
                        value.parse().map_err(|e| bad(format!("{e}")))?
                }
                "KLAXON_WORKERS_DELIVERY" => {
                    self.workers.delivery = value.parse().map_err(|e| bad(format!("{e}")))?
                }
                "KLAXON_WORKERS_IDLE_POLL_MS" => {
                    self.workers.idle_poll_ms = value.parse().map_err(|e| bad(format!("{e}")))?
                }
                // Provider secrets can stay out of the file; they fill a configured section.
                "KLAXON_NOTIFY_EMAIL_PASSWORD" => match self.notify.email.as_mut() {
                    Some(e) => e.password = value,
                    None => return Err(bad("needs a [notify.email] section".into())),
                },
                "KLAXON_NOTIFY_TWILIO_AUTH_TOKEN" => match self.notify.twilio.as_mut() {
                    Some(t) => t.auth_token = value,
                    None => return Err(bad("needs a [notify.twilio] section".into())),
                },
                "KLAXON_NOTIFY_EMAIL_BACKUP_PASSWORD" => match self.notify.email_backup.as_mut() {
                    Some(e) => e.password = value,
                    None => return Err(bad("needs a [notify.email_backup] section".into())),
                },
                "KLAXON_NOTIFY_TWILIO_BACKUP_AUTH_TOKEN" => {
                    match self.notify.twilio_backup.as_mut() {
                        Some(t) => t.auth_token = value,
                        None => return Err(bad("needs a [notify.twilio_backup] section".into())),
                    }
                }
                "KLAXON_AUTH_SESSION_TTL_MINUTES" => {
                    self.auth.session_ttl_minutes =
                        value.parse().map_err(|e| bad(format!("{e}")))?
                }
                "KLAXON_AUTH_ATTEMPTS_PER_SECOND" => {
                    self.auth.attempts_per_second =
                        value.parse().map_err(|e| bad(format!("{e}")))?
                }
                "KLAXON_AUTH_AUDIT_RETENTION_DAYS" => {
                    self.auth.audit_retention_days =
                        value.parse().map_err(|e| bad(format!("{e}")))?
                }
                "KLAXON_AUTH_SECURE_COOKIE" => {
                    self.auth.secure_cookie = Some(value.parse().map_err(|e| bad(format!("{e}")))?)
                }
                "KLAXON_STORAGE_MAX_CONNECTIONS" => {
                    self.storage.max_connections = value.parse().map_err(|e| bad(format!("{e}")))?
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The database URL actually used: the configured one, or the SQLite file in `data_dir`.
    pub fn effective_database_url(&self) -> String {
        if self.database_url.is_empty() {
            format!("sqlite://{}", self.data_dir.join("klaxon.db").display())
        } else {
            self.database_url.clone()
        }
    }

    /// Base URL for banners and links.
    pub fn base_url(&self, bound: SocketAddr) -> String {
        if self.public_url.is_empty() {
            format!("http://{bound}")
        } else {
            self.public_url.trim_end_matches('/').to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_listen_on_localhost_8080_with_sqlite_in_data_dir() {
        let c = Config::default();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.effective_database_url(), "sqlite://klaxon-data/klaxon.db");
    }

    #[test]
    fn toml_then_env_overlay() {
        let mut c = Config::from_toml(
            "listen = \"0.0.0.0:9000\"\n[limits]\nper_integration_per_second = 5\nper_integration_per_minute = 50\nper_account_per_second = 7\n",
        )
        .unwrap();
        assert_eq!(c.limits.per_integration_per_second, 5);
        c.apply_env([("KLAXON_LISTEN".to_string(), "127.0.0.1:1".to_string())])
            .unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:1");
        assert!(
            c.apply_env([("KLAXON_LISTEN".to_string(), "nope".to_string())])
                .is_err()
        );
    }

    #[test]
    fn notify_sections_parse_and_secrets_come_from_the_environment() {
        let mut c = Config::from_toml(
            "[workers]\ndelivery = false\n[notify]\nallow_private_targets = true\n\
             [notify.email]\nhost = \"smtp.example.com\"\nport = 465\nsecurity = \"tls\"\n\
             username = \"klaxon\"\nfrom = \"Klaxon <alerts@example.com>\"\n\
             [notify.twilio]\naccount_sid = \"AC1\"\nfrom = \"+15550100\"\n",
        )
        .unwrap();
        assert!(!c.workers.delivery);
        // RSP-380: webhook endpoints may be private unless the installation restricts them.
        assert!(c.notify.webhook_private_targets);
        assert!(!Config::default().notify.allow_private_targets);
        assert!(Config::default().notify.webhook_private_targets);
        let restricted = Config::from_toml(
            "[notify]
webhook_private_targets = false
",
        )
        .unwrap();
        assert!(!restricted.notify.webhook_private_targets);
        c.apply_env([
            ("KLAXON_NOTIFY_EMAIL_PASSWORD".to_string(), "pw".to_string()),
            (
                "KLAXON_NOTIFY_TWILIO_AUTH_TOKEN".to_string(),
                "tok".to_string(),
            ),
        ])
        .unwrap();
        let email = c.notify.email.as_ref().unwrap();
        assert_eq!(email.security, klaxon_notify::SmtpSecurity::Tls);
        assert_eq!(email.password, "pw");
        assert!(
            !format!("{email:?}").contains("pw\""),
            "secrets are redacted"
        );
        assert_eq!(c.notify.twilio.as_ref().unwrap().auth_token, "tok");
        assert_eq!(
            c.notify.twilio.as_ref().unwrap().api_base,
            "https://api.twilio.com"
        );
        c.notify.validate().unwrap();
        assert!(
            Config::from_toml("[notify.email]\nhost = \"h\"\nsecurity = \"ssl\"\n").is_err(),
            "an unknown security mode is refused"
        );
        let mut bad = Config::default();
        bad.notify.email = Some(klaxon_notify::SmtpConfig::default());
        assert_eq!(
            bad.notify.validate().unwrap_err(),
            "notify.email.host is required"
        );
    }

    #[test]
    fn self_hosted_is_the_default_and_saas_needs_its_settings() {
        // spec: SVC-400
        let c = Config::default();
        assert_eq!(c.deployment.mode, Mode::SelfHosted);
        assert!(c.deployment.saas_settings().unwrap().is_none());
        let mut c = Config::from_toml("[deployment]\nmode = \"saas\"\n").unwrap();
        let err = c.deployment.saas_settings().unwrap_err();
        assert!(err.contains("operator_identity"), "{err}");
        c = Config::from_toml(
            "[deployment]\nmode = \"saas\"\nregion = \"cn-north\"\n\
             operator_identity = \"Op Ltd\"\nbilling_tz = \"Asia/Shanghai\"\n\
             support_address = \"support@example.com\"\n\
             [deployment.documents]\nterms_of_service = \"2025-01\"\nuser_agreement = \"2025-01\"\n\
             data_protection = \"2025-01\"\nsla = \"2025-01\"\n",
        )
        .unwrap();
        let err = c.deployment.saas_settings().unwrap_err();
        assert!(err.contains("price_list"), "{err}");
        c.deployment.documents.price_list = "2025-01".into();
        // spec: SVC-185 — no SaaS mode without the key-encryption key of tenant data keys.
        let err = c.deployment.saas_settings().unwrap_err();
        assert!(err.contains("key_encryption_key"), "{err}");
        c.apply_env([(
            "KLAXON_DEPLOYMENT_KEY_ENCRYPTION_KEY".to_string(),
            "not-hex".to_string(),
        )])
        .unwrap();
        let err = c.deployment.saas_settings().unwrap_err();
        assert!(
            err.contains("key_encryption_key") && !err.contains("not-hex"),
            "{err}"
        );
        c.deployment.key_encryption_key = SecretText("ab".repeat(32));
        assert!(
            !format!("{c:?}").contains(&"ab".repeat(32)),
            "never printed"
        );
        let s = c.deployment.saas_settings().unwrap().unwrap();
        assert_eq!(s.region, "cn-north");
        c.deployment.currency = "EUR".into();
        assert!(
            c.deployment
                .saas_settings()
                .unwrap_err()
                .contains("currency")
        );
        c.apply_env([(
            "KLAXON_DEPLOYMENT_MODE".to_string(),
            "self_hosted".to_string(),
        )])
        .unwrap();
        assert!(c.deployment.saas_settings().unwrap().is_none());
        assert!(
            c.apply_env([("KLAXON_DEPLOYMENT_MODE".to_string(), "hosted".to_string())])
                .is_err()
        );
    }

    #[test]
    fn unknown_keys_are_refused() {
        assert!(Config::from_toml("lisen = \"x\"").is_err());
    }

    #[test]
    fn smtp_receiver_is_off_unless_configured() {
        // spec: ING-211 (5 MiB default limit)
        let c = Config::default();
        assert_eq!(c.smtp.listen, None);
        assert_eq!(c.smtp.max_message_bytes, 5 * 1024 * 1024);
        let mut c = Config::from_toml(
            "[smtp]\nlisten = \"127.0.0.1:2525\"\ndomain = \"alerts.example.com\"\n",
        )
        .unwrap();
        assert_eq!(
            c.smtp.listen.map(|a| a.to_string()).as_deref(),
            Some("127.0.0.1:2525")
        );
        assert_eq!(c.smtp.domain, "alerts.example.com");
        c.apply_env([
            (
                "KLAXON_SMTP_DOMAIN".to_string(),
                "mx.example.net".to_string(),
            ),
            (
                "KLAXON_SMTP_MAX_MESSAGE_BYTES".to_string(),
                "1024".to_string(),
            ),
            ("KLAXON_SMTP_LISTEN".to_string(), String::new()),
        ])
        .unwrap();
        assert_eq!(c.smtp.domain, "mx.example.net");
        assert_eq!(c.smtp.max_message_bytes, 1024);
        assert_eq!(c.smtp.listen, None);
        assert!(Config::from_toml("[smtp]\nlisten = \"nope\"\n").is_err());
    }
}
