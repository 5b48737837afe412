//! Agreement documents and notices on a SaaS node (service-agreement.md §3, §20;
//! docs/saas.md "Agreements and notices").
//!
//! - [`publish`] and [`retract`]: the operator's publication of a version with the notices of
//!   SVC-035 (announcement and in-app in the same transaction as the version; for a material
//!   version, an e-mail to each tenant's owner through the SMTP sender, each sending recorded
//!   with the provider's message id). `klaxon admin documents` calls them.
//! - [`DeemedCache`] and [`use_event`]: SVC-037 acceptance by continued use. Each node keeps
//!   the published tenant-level versions and the (tenant, version) pairs already decided in
//!   memory, reloaded with the tenant states every 500 ms, so a push or an API call costs one
//!   lookup; only the first use event after a version takes effect writes, before the
//!   request is answered (durable: the answer comes after the commit).

use std::collections::HashSet;
use std::sync::RwLock;

use jiff::Timestamp;
use klaxon_core::model::Millis;
use klaxon_notify::SmtpConfig;
use klaxon_notify::smtp::Mailer;
use klaxon_saas::agreement::{VersionFacts, deemed_acceptances};
use klaxon_saas::notice::{Category, Channel, Contacts, recipients};
use klaxon_store::{
    Decided, DocumentVersion, NewDecision, NewDocument, NewNotice, SaasFailure, SaasSettings, Store,
};

use crate::state::AppState;

/// Template of the notices about a version (SVC-312: template id and version recorded).
const TEMPLATE_VERSION: &str = "1";

/// What a node knows about versions and decisions, for the SVC-037 check.
#[derive(Default)]
pub struct DeemedCache {
    inner: RwLock<Deemed>,
}

#[derive(Default)]
struct Deemed {
    versions: Vec<VersionFacts>,
    decided: HashSet<(i64, i64)>,
}

impl DeemedCache {
    pub async fn refresh(&self, store: &Store) -> Result<(), SaasFailure> {
        let versions = store
            .saas_documents()
            .await?
            .iter()
            .map(DocumentVersion::facts)
            .collect::<Result<Vec<_>, _>>()?;
        let decided = store.saas_tenant_decisions().await?.into_iter().collect();
        if let Ok(mut d) = self.inner.write() {
            *d = Deemed { versions, decided };
        }
        Ok(())
    }

    /// The versions a use event of `account_id` at `at` binds it to (usually none).
    fn due(&self, account_id: i64, at: Timestamp) -> Vec<i64> {
        let Ok(d) = self.inner.read() else {
            return Vec::new();
        };
        if d.versions.is_empty() {
            return Vec::new();
        }
        deemed_acceptances(&d.versions, at, |v| d.decided.contains(&(account_id, v)))
    }

    fn mark(&self, account_id: i64, version_id: i64) {
        if let Ok(mut d) = self.inner.write() {
            d.decided.insert((account_id, version_id));
        }
    }

    /// A decision made through this node applies here at once.
    pub fn decided(&self, account_id: i64, version_id: i64) {
        self.mark(account_id, version_id);
    }
}

/// SVC-037: paths whose calls are not use events — reading or deciding on the agreements
/// and notices, exporting, deleting data — so a tenant can read the terms, refuse, or take
/// its data and leave without being bound by continued use.
fn not_a_use_event(path: &str) -> bool {
    path.starts_with("/account/agreement/")
        || path.starts_with("/account/notice/")
        || path.starts_with("/account/export/")
        || path == "/incident/bulk-delete"
        || path == "/member/delete"
        || path.starts_with("/app-key/delete")
}

/// The kind of use event, recorded with a deemed acceptance.
#[derive(Debug, Clone, Copy)]
pub enum UseEvent<'a> {
    /// An authenticated Open API or console call on `path`.
    Request { path: &'a str, console: bool },
    /// An accepted inbound event (push, e-mail, pull).
    Inbound,
}

/// SVC-037: records a deemed acceptance for every version the tenant is bound to by this
/// use event at `at` (ms), before the caller answers. Nothing to do → one in-memory lookup.
/// A tenant not in service is not deemed to accept. Failures are logged and retried by the
/// next use event; the request itself is not refused for them.
pub async fn use_event(
    state: &AppState,
    account_id: i64,
    at: Millis,
    request_id: &str,
    event: UseEvent<'_>,
) {
    let Some(saas) = &state.saas else {
        return;
    };
    if let UseEvent::Request { path, .. } = event
        && not_a_use_event(path)
    {
        return;
    }
    let Ok(at_ts) = Timestamp::from_millisecond(at) else {
        return;
    };
    let due = saas.deemed.due(account_id, at_ts);
    if due.is_empty() {
        return;
    }
    if !klaxon_saas::state::in_force(saas.state_of(account_id)) {
        return;
    }
    let (event_type, client_type) = match event {
        UseEvent::Request { console: true, .. } => ("console_request", "web"),
        UseEvent::Request { .. } => ("api_request", "api"),
        UseEvent::Inbound => ("inbound_event", "push"),
    };
    for version_id in due {
        let d = NewDecision {
            account_id,
            version_id,
            deemed: true,
            at,
            client_type: client_type.into(),
            request_id: request_id.into(),
            event_type: event_type.into(),
            ..NewDecision::default()
        };
        match state.store.saas_decide(&saas.settings, &d).await {
            Ok(Decided::New(_) | Decided::Already(_)) => saas.deemed.mark(account_id, version_id),
            Err(e) => tracing::error!(account_id, version_id, error = %e,
                "cannot record the acceptance by continued use; the next use event retries"),
        }
    }
}

fn doc_name(v: &DocumentVersion) -> &'static str {
    match v.doc_type {
        klaxon_saas::agreement::DocumentType::TermsOfService => "Terms of Service",
        klaxon_saas::agreement::DocumentType::DataProtection => "Data Protection Protocol",
        klaxon_saas::agreement::DocumentType::Sla => "Service Level Agreement",
        klaxon_saas::agreement::DocumentType::UserAgreement => "User Agreement",
        klaxon_saas::agreement::DocumentType::PrivacyPolicy => "Privacy Policy",
    }
}

fn iso(ms: Millis) -> String {
    Timestamp::from_millisecond(ms)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// SVC-035 content: the document, version, effective date, summary, where to read it and
/// how to refuse.
fn publication_text(v: &DocumentVersion) -> (String, String) {
    let subject = format!(
        "{} version {} takes effect on {}",
        doc_name(v),
        v.version,
        iso(v.effective_at)
    );
    let change = if v.material {
        "This is a material change."
    } else {
        "This change is not marked material."
    };
    let body = format!(
        "A new version of the {name} has been published.\n\n\
         Document: {name} ({doc_type})\nVersion: {version}\nPublished: {published}\n\
         Effective: {effective}\nSHA-256 of the text: {hash}\n\n{change}\n\nSummary of changes:\n{summary}\n\n\
         Read it and the previous versions with POST /account/agreement/list (version_id {id}).\n\
         The owner or an admin may accept it now with POST /account/agreement/accept. Using the \
         service at or after the effective date counts as acceptance. To refuse, the owner uses \
         POST /account/agreement/refuse before the effective date: the service then ends on the \
         effective date and the current version governs until then.\n",
        name = doc_name(v),
        doc_type = v.doc_type.as_str(),
        version = v.version,
        published = iso(v.published_at),
        effective = iso(v.effective_at),
        hash = v.body_sha256,
        summary = v.summary,
        id = v.version_id,
    );
    (subject, body)
}

fn retraction_text(v: &DocumentVersion) -> (String, String) {
    (
        format!("{} version {} is withdrawn", doc_name(v), v.version),
        format!(
            "The {name} version {version} (published {published}, due to take effect {effective}) \
             has been withdrawn and will not take effect. The version in force stays in force. \
             Acceptances and refusals of the withdrawn version remain on record, marked retracted.\n",
            name = doc_name(v),
            version = v.version,
            published = iso(v.published_at),
            effective = iso(v.effective_at),
        ),
    )
}

/// The announcement (to all tenants) and the in-app notices (owner and admins of every
/// tenant in service) about `v`, sent at `at`.
fn platform_notices(
    v: &DocumentVersion,
    category: Category,
    template: &str,
    (subject, content): (String, String),
    tenants: &[(i64, Contacts)],
    at: Millis,
) -> Vec<NewNotice> {
    let base = NewNotice {
        account_id: 0,
        member_id: 0,
        category,
        template_id: template.into(),
        template_version: TEMPLATE_VERSION.into(),
        language: v.language.clone(),
        subject,
        content,
        channel: Channel::Announcement,
        recipient: String::new(),
        sent_at: at,
        provider_message_id: String::new(),
        status: "sent".into(),
        status_detail: String::new(),
        related: v.related(),
    };
    let mut out = vec![base.clone()];
    for (account_id, contacts) in tenants {
        for r in recipients(category, contacts)
            .into_iter()
            .filter(|r| r.channel == Channel::InApp)
        {
            out.push(NewNotice {
                account_id: *account_id,
                member_id: r.member_id,
                channel: Channel::InApp,
                recipient: r.address,
                ..base.clone()
            });
        }
    }
    out
}

async fn tenants(store: &Store) -> Result<Vec<(i64, Contacts)>, SaasFailure> {
    let mut out = Vec::new();
    for account_id in store.saas_notice_accounts().await? {
        out.push((account_id, store.saas_contacts(account_id).await?));
    }
    Ok(out)
}

/// What a publication did.
#[derive(Debug)]
pub struct Published {
    pub version: DocumentVersion,
    /// Announcement and in-app notices, written with the version.
    pub platform_notices: usize,
    /// E-mails handed to the SMTP server / refused by it.
    pub emails_sent: usize,
    pub emails_failed: Vec<String>,
}

/// SVC-031/035: publishes `doc` with its notices. A material version needs an e-mail sender
/// (its notice includes an e-mail, SVC-316): without one nothing is published.
pub async fn publish(
    store: &Store,
    settings: &SaasSettings,
    email: Option<&SmtpConfig>,
    timeout_ms: u64,
    doc: &NewDocument,
) -> anyhow::Result<Published> {
    let mailer = match (doc.material, email) {
        (true, Some(cfg)) => Some(Mailer::new(cfg, timeout_ms).map_err(anyhow::Error::msg)?),
        (true, None) => anyhow::bail!(
            "a material version is announced by e-mail too (SVC-035), and no e-mail sender is configured ([notify.email])"
        ),
        (false, _) => None,
    };
    let tenants = tenants(store).await?;
    let category = Category::AgreementVersion {
        material: doc.material,
    };
    let at = doc.published_at;
    let (version, ids) = store
        .saas_publish_document(settings, doc, |v| {
            platform_notices(
                v,
                category,
                "agreement_version",
                publication_text(v),
                &tenants,
                at,
            )
        })
        .await?;
    let mut published = Published {
        platform_notices: ids.len(),
        emails_sent: 0,
        emails_failed: Vec::new(),
        version,
    };
    if let Some(mailer) = mailer {
        let (subject, content) = publication_text(&published.version);
        for (account_id, contacts) in &tenants {
            for r in recipients(category, contacts)
                .into_iter()
                .filter(|r| r.channel == Channel::Email)
            {
                let rid = format!(
                    "notice-{}-{}-{}",
                    published.version.version_id,
                    account_id,
                    klaxon_store::hash_secret(&r.address)
                        .get(..12)
                        .unwrap_or_default()
                );
                // SVC-311: the notice counts from the moment it is sent, whatever happens to
                // it after; the record says what the SMTP server answered.
                let sent_at = Timestamp::now().as_millisecond().max(at);
                let html = format!("<pre>{}</pre>", html_escape(&content));
                let (status, detail, message_id) = match mailer
                    .send(&rid, &r.address, "", &subject, html, content.clone())
                    .await
                {
                    Ok(id) => {
                        published.emails_sent += 1;
                        ("sent", String::new(), id)
                    }
                    Err(e) => {
                        let text = format!("{e:?}");
                        published
                            .emails_failed
                            .push(format!("{}: {text}", r.address));
                        ("failed", text, String::new())
                    }
                };
                store
                    .saas_record_notices(
                        &settings.billing_tz,
                        &[NewNotice {
                            account_id: *account_id,
                            member_id: 0,
                            category,
                            template_id: "agreement_version".into(),
                            template_version: TEMPLATE_VERSION.into(),
                            language: published.version.language.clone(),
                            subject: subject.clone(),
                            content: content.clone(),
                            channel: Channel::Email,
                            recipient: r.address.clone(),
                            sent_at,
                            provider_message_id: message_id,
                            status: status.into(),
                            status_detail: detail,
                            related: published.version.related(),
                        }],
                    )
                    .await?;
            }
        }
    }
    Ok(published)
}

/// SVC-031: retracts a version not yet effective, with a retraction notice (announcement and
/// in-app) in the same transaction.
pub async fn retract(
    store: &Store,
    settings: &SaasSettings,
    version_id: i64,
    at: Millis,
    actor: &str,
) -> Result<(DocumentVersion, usize), SaasFailure> {
    let tenants = tenants(store).await?;
    let (v, ids) = store
        .saas_retract_document(settings, version_id, at, actor, |v| {
            platform_notices(
                v,
                Category::AgreementRetracted,
                "agreement_retracted",
                retraction_text(v),
                &tenants,
                at,
            )
        })
        .await?;
    Ok((v, ids.len()))
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
