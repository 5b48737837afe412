//! A real SMTP receiver on a socket for the tests that send mail (notifications, support
//! tickets): plain, STARTTLS or implicit TLS; it keeps every transaction it accepted and can
//! refuse the next few with a transient error.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

#[derive(Debug, Clone)]
pub struct Mail {
    pub from: String,
    pub rcpt: Vec<String>,
    pub data: String,
    /// The transaction ran inside TLS (STARTTLS or implicit).
    pub tls: bool,
}

/// How the receiver protects its sessions.
#[derive(Clone)]
pub enum SmtpMode {
    Plain,
    /// Offers STARTTLS with this server configuration.
    StartTls(tokio_rustls::TlsAcceptor),
    /// TLS from the first byte.
    Implicit(tokio_rustls::TlsAcceptor),
}

#[derive(Clone)]
pub struct Smtp {
    pub addr: SocketAddr,
    mails: Arc<Mutex<Vec<Mail>>>,
    /// The next this-many transactions get `451` at MAIL FROM (a transient refusal).
    pub fail_next: Arc<AtomicUsize>,
}

impl Smtp {
    pub async fn start() -> Smtp {
        Smtp::start_with(SmtpMode::Plain).await
    }

    pub async fn start_with(mode: SmtpMode) -> Smtp {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let smtp = Smtp {
            addr: listener.local_addr().unwrap(),
            mails: Arc::default(),
            fail_next: Arc::default(),
        };
        let s = smtp.clone();
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let (s, mode) = (s.clone(), mode.clone());
                tokio::spawn(async move {
                    match mode {
                        SmtpMode::Plain => {
                            s.session(BufReader::new(sock), false, false).await;
                        }
                        SmtpMode::StartTls(acceptor) => {
                            let mut plain = BufReader::new(sock);
                            if s.session(&mut plain, true, false).await {
                                // The client waited for our 220, so nothing is buffered.
                                let Ok(tls) = acceptor.accept(plain.into_inner()).await else {
                                    return;
                                };
                                s.commands(BufReader::new(tls), false, true).await;
                            }
                        }
                        SmtpMode::Implicit(acceptor) => {
                            let Ok(tls) = acceptor.accept(sock).await else {
                                return;
                            };
                            s.session(BufReader::new(tls), false, true).await;
                        }
                    }
                });
            }
        });
        smtp
    }

    /// Greets, then serves commands; true when the client asked for STARTTLS.
    async fn session<S>(&self, mut io: S, offer_tls: bool, tls: bool) -> bool
    where
        S: tokio::io::AsyncBufRead + tokio::io::AsyncWrite + Unpin,
    {
        say(&mut io, "220 localhost test ESMTP\r\n").await;
        self.commands(io, offer_tls, tls).await
    }

    async fn commands<S>(&self, mut io: S, offer_tls: bool, tls: bool) -> bool
    where
        S: tokio::io::AsyncBufRead + tokio::io::AsyncWrite + Unpin,
    {
        let (mut from, mut rcpt) = (String::new(), Vec::new());
        loop {
            let mut line = String::new();
            if io.read_line(&mut line).await.unwrap_or(0) == 0 {
                return false;
            }
            let cmd = line.trim_end().to_string();
            let upper = cmd.to_uppercase();
            if upper.starts_with("EHLO") || upper.starts_with("HELO") {
                let ext = if offer_tls { "250-STARTTLS\r\n" } else { "" };
                say(&mut io, &format!("250-localhost\r\n{ext}250 8BITMIME\r\n")).await;
            } else if upper == "STARTTLS" && offer_tls {
                say(&mut io, "220 2.0.0 Ready to start TLS\r\n").await;
                return true;
            } else if upper.starts_with("MAIL FROM:") {
                let refuse = self
                    .fail_next
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |k| k.checked_sub(1))
                    .is_ok();
                if refuse {
                    say(&mut io, "451 4.3.0 Try again later\r\n").await;
                } else {
                    from = cmd[10..].trim().to_string();
                    say(&mut io, "250 2.1.0 OK\r\n").await;
                }
            } else if upper.starts_with("RCPT TO:") {
                rcpt.push(cmd[8..].trim().to_string());
                say(&mut io, "250 2.1.5 OK\r\n").await;
            } else if upper == "DATA" {
                say(&mut io, "354 End data with <CR><LF>.<CR><LF>\r\n").await;
                let mut data = String::new();
                loop {
                    let mut l = String::new();
                    if io.read_line(&mut l).await.unwrap_or(0) == 0 {
                        return false;
                    }
                    if l == ".\r\n" {
                        break;
                    }
                    // Dot-stuffing (RFC 5321 4.5.2): a leading dot was doubled by the client.
                    data.push_str(l.strip_prefix('.').unwrap_or(&l));
                }
                self.mails.lock().unwrap().push(Mail {
                    from: std::mem::take(&mut from),
                    rcpt: std::mem::take(&mut rcpt),
                    data,
                    tls,
                });
                say(&mut io, "250 2.0.0 OK queued\r\n").await;
            } else if upper == "RSET" || upper == "NOOP" {
                say(&mut io, "250 OK\r\n").await;
            } else if upper == "QUIT" {
                say(&mut io, "221 Bye\r\n").await;
                return false;
            } else {
                say(&mut io, "502 5.5.2 Command not recognized\r\n").await;
            }
        }
    }

    pub fn mails(&self) -> Vec<Mail> {
        self.mails.lock().unwrap().clone()
    }
}

async fn say<W: tokio::io::AsyncWrite + Unpin>(w: &mut W, s: &str) {
    w.write_all(s.as_bytes()).await.unwrap();
    w.flush().await.unwrap();
}

/// A self-signed certificate for 127.0.0.1 and localhost: the acceptor, and the PEM file the
/// client is told to trust (`notify.email.ca_file`).
pub fn test_tls(dir: &std::path::Path) -> (tokio_rustls::TlsAcceptor, String) {
    use tokio_rustls::rustls;
    klaxon_notify::install_crypto_provider();
    let key = rcgen::KeyPair::generate().unwrap();
    let params =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .unwrap();
    let cert = params.self_signed(&key).unwrap();
    let pem_path = dir.join("smtp-ca.pem");
    std::fs::write(&pem_path, cert.pem()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![cert.der().clone()],
        rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
    )
    .unwrap();
    (
        tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        pem_path.display().to_string(),
    )
}
