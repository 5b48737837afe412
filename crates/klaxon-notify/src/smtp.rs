//! E-mail over SMTP with lettre (RSP-284): plain, STARTTLS (required, never opportunistic) or
//! implicit TLS, optional AUTH. The `Message-ID` is derived from the notification's `rid`, so a
//! repeat after a crash carries the same id and a mailbox can recognise it.

use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use crate::config::{SmtpConfig, SmtpSecurity};
use crate::providers::{SendError, clean};

#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// Where the recipient's answer should go, when not to `from` (the support desk's
    /// address for ticket mail).
    reply_to: Option<Mailbox>,
}

impl Mailer {
    pub fn new(cfg: &SmtpConfig, timeout_ms: u64) -> Result<Mailer, String> {
        crate::install_crypto_provider();
        let from: Mailbox = cfg
            .from
            .parse()
            .map_err(|e| format!("notify.email.from: {e}"))?;
        let tls = match cfg.security {
            SmtpSecurity::None => Tls::None,
            SmtpSecurity::Starttls | SmtpSecurity::Tls => {
                let mut builder = TlsParameters::builder(cfg.host.clone());
                if !cfg.ca_file.is_empty() {
                    let pem = std::fs::read(&cfg.ca_file).map_err(|e| {
                        format!("notify.email.ca_file: cannot read {}: {e}", cfg.ca_file)
                    })?;
                    let cert = Certificate::from_pem(&pem).map_err(|e| {
                        format!(
                            "notify.email.ca_file: {} is not a PEM certificate: {e}",
                            cfg.ca_file
                        )
                    })?;
                    builder = builder.add_root_certificate(cert);
                }
                let params = builder
                    .build()
                    .map_err(|e| format!("notify.email: TLS setup failed: {e}"))?;
                if cfg.security == SmtpSecurity::Tls {
                    Tls::Wrapper(params)
                } else {
                    Tls::Required(params)
                }
            }
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&cfg.host)
            .port(cfg.port)
            .tls(tls)
            .timeout(Some(Duration::from_millis(timeout_ms)));
        if !cfg.username.is_empty() {
            builder =
                builder.credentials(Credentials::new(cfg.username.clone(), cfg.password.clone()));
        }
        Ok(Mailer {
            transport: builder.build(),
            from,
            reply_to: None,
        })
    }

    /// The same sender, with answers directed to `address` (`Reply-To`).
    pub fn with_reply_to(mut self, address: &str) -> Result<Mailer, String> {
        let mailbox: Mailbox = address
            .parse()
            .map_err(|e| format!("reply-to address {address:?}: {e}"))?;
        self.reply_to = Some(mailbox);
        Ok(self)
    }

    /// Sends one message; returns its `Message-ID`.
    pub async fn send(
        &self,
        rid: &str,
        to_address: &str,
        to_name: &str,
        subject: &str,
        html: String,
        text: String,
    ) -> Result<String, SendError> {
        let to: Mailbox = match to_address.parse::<lettre::Address>() {
            Ok(addr) => Mailbox::new(Some(to_name.to_string()).filter(|n| !n.is_empty()), addr),
            Err(e) => {
                return Err(SendError::Permanent(format!(
                    "provider_error:invalid recipient address: {e}"
                )));
            }
        };
        let domain = self.from.email.domain().to_string();
        let message_id = format!("<{rid}.notification@{domain}>");
        let mut builder = lettre::Message::builder().from(self.from.clone());
        if let Some(r) = &self.reply_to {
            builder = builder.reply_to(r.clone());
        }
        let message = builder
            .to(to)
            .subject(subject)
            .message_id(Some(message_id.clone()))
            .multipart(MultiPart::alternative_plain_html(text, html))
            .map_err(|e| {
                SendError::Permanent(format!("provider_error:{}", clean(&e.to_string())))
            })?;
        match self.transport.send(message).await {
            Ok(_) => Ok(message_id),
            // A 5xx reply: the server refuses this message for good.
            Err(e) if e.is_permanent() => Err(SendError::Permanent(format!(
                "provider_error:{}",
                clean(&error_text(&e))
            ))),
            // 4xx replies, connection and TLS trouble, timeouts: try again later.
            Err(e) => Err(SendError::Transient(clean(&error_text(&e)))),
        }
    }
}

fn error_text(e: &lettre::transport::smtp::Error) -> String {
    let mut text = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        src = s.source();
    }
    text
}
