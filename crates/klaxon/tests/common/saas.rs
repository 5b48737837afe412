//! Helpers of the SaaS-mode tests (`saas.rs`, `saas_licences.rs`): the deployment settings
//! SaaS mode requires, the matching CLI config file, running `klaxon admin tenant …`, and
//! dropping a PostgreSQL test database once its node has stopped.

use jiff::Timestamp;
use klaxon_server::Config;
use klaxon_server::config::Mode;

pub fn ms(s: &str) -> i64 {
    s.parse::<Timestamp>().unwrap().as_millisecond()
}

pub fn saas(config: &mut Config) {
    let d = &mut config.deployment;
    d.mode = Mode::Saas;
    d.region = "cn-north".into();
    d.operator_identity = "Example Cloud Ltd".into();
    d.billing_tz = "UTC".into();
    d.currency = "CNY".into();
    d.support_address = "support@example.com".into();
    d.documents.terms_of_service = "2025-01".into();
    d.documents.user_agreement = "2025-01".into();
    d.documents.data_protection = "2025-01".into();
    d.documents.sla = "2025-01".into();
    d.documents.price_list = "2025-01".into();
    d.key_encryption_key = klaxon_server::config::SecretText(TEST_KEK.into());
}

/// The key-encryption key of the SaaS-mode tests (SVC-185).
pub const TEST_KEK: &str = "5c1a7e0b9d2f4e6a8c0b1d3f5e7a9c2b4d6f8e0a1c3e5a7b9d1f3e5c7a9b0d2f";

/// The TOML the CLI reads: the same database and deployment settings as the server.
pub fn cli_config(dir: &std::path::Path, database_url: &str) -> std::path::PathBuf {
    let path = dir.join("klaxon.toml");
    let db = if database_url.is_empty() {
        String::new()
    } else {
        format!("database_url = {database_url:?}\n")
    };
    let text = format!(
        "data_dir = {:?}\n{db}[deployment]\nmode = \"saas\"\nregion = \"cn-north\"\n\
         operator_identity = \"Example Cloud Ltd\"\nbilling_tz = \"UTC\"\ncurrency = \"CNY\"\n\
         support_address = \"support@example.com\"\nkey_encryption_key = \"{TEST_KEK}\"\n\
         [deployment.documents]\n\
         terms_of_service = \"2025-01\"\nuser_agreement = \"2025-01\"\n\
         data_protection = \"2025-01\"\nsla = \"2025-01\"\nprice_list = \"2025-01\"\n",
        dir.display().to_string()
    );
    std::fs::write(&path, text).unwrap();
    path
}

pub async fn cli(config: &std::path::Path, args: &[&str]) -> (bool, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_klaxon"))
        .env("KLAXON_LOG", "warn")
        .env_remove("KLAXON_DATABASE_URL")
        .env_remove("KLAXON_DEPLOYMENT_MODE")
        .arg("admin")
        .arg("tenant")
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .await
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The bootstrap owner's acceptance of the terms in force that an order carries (SVC-033),
/// as `klaxon admin tenant` takes it.
pub const ACCEPTED: [&str; 4] = [
    "--accepted-by",
    "owner@klaxon.local",
    "--accepted-from",
    "203.0.113.7",
];

/// Publishes a terms-of-service version in force since 2024 on a SaaS node, so its orders
/// have terms to accept (SVC-033). A self-hosted node has no agreements: nothing is done.
pub async fn publish_terms(server: &klaxon_server::Server) {
    let Some(settings) = server.saas_settings() else {
        return;
    };
    let at = ms("2024-01-01T00:00:00Z");
    server
        .store()
        .saas_publish_document(
            settings,
            &klaxon_store::NewDocument {
                doc_type: klaxon_saas::agreement::DocumentType::TermsOfService,
                version: "2024-01".into(),
                language: "en-US".into(),
                body: "The terms of service.".into(),
                summary: "First version.".into(),
                material: false,
                justification: String::new(),
                published_at: at,
                effective_at: at,
                author: "legal".into(),
            },
            |_| Vec::new(),
        )
        .await
        .unwrap();
}

/// The tenant's own audit log as its admins see it at `now`, newest first (whatever the
/// service state lets the Open API serve).
pub async fn tenant_audit(
    store: &klaxon_store::Store,
    account_id: i64,
    now: i64,
) -> Vec<klaxon_store::AuditRecord> {
    store
        .search_audit(
            account_id,
            &klaxon_store::AuditFilter {
                start: 0,
                end: now + 1,
                limit: 100,
                now,
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .records
}
