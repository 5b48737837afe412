//! The built-in SMTP receiver of e-mail integrations (ingest.md ING-210, ING-211).
//!
//! A small RFC 5321 server: `EHLO`/`HELO`, `MAIL`, `RCPT`, `DATA`, `RSET`, `NOOP`, `VRFY`,
//! `QUIT`. Recipients are checked at `RCPT` (550 5.1.1 unknown, 550 5.7.1 disabled); the
//! message is parsed after `DATA` by `klaxon_sources::email` and its events are committed to
//! the inbox in one group commit before the 250 is sent, so a 250 means committed, like a
//! 2xx on the push endpoints. Oversize messages are answered 552 5.3.4 and ingest nothing;
//! a throttled integration makes the message 451 4.7.1 (temporary), nothing ingested.

use std::sync::Arc;
use std::time::{Duration, Instant};

use klaxon_core::model::{EventOrigin, NewEvent};
use klaxon_core::ratelimit::Admission;
use klaxon_sources::email::{EmailSettings, MailOutcome, parse_mail, to_event};
use klaxon_store::Integration;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::state::{AppState, new_request_id, random_hex};

/// Most recipients of one message.
const MAX_RECIPIENTS: usize = 100;
/// Longest command line we read (RFC 5321 allows 512; be lenient).
const MAX_LINE: usize = 4096;
/// Idle time after which a session is dropped.
const IDLE: Duration = Duration::from_secs(300);

/// The address of an e-mail integration: its key as local part at the mail domain (ING-210).
pub fn address(integration: &Integration, domain: &str) -> String {
    format!("{}@{}", integration.integration_key, domain)
}

/// Accepts SMTP sessions until shutdown.
pub async fn run(state: AppState, listener: TcpListener, mut shutdown: watch::Receiver<bool>) {
    let state = Arc::new(state);
    loop {
        tokio::select! {
            _ = async { let _ = shutdown.wait_for(|stop| *stop).await; } => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let state = Arc::clone(&state);
                    tokio::spawn(async move {
                        if let Err(e) = session(&state, stream).await {
                            tracing::debug!(%peer, error = %e, "smtp session ended");
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "smtp accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
}

/// The envelope of one transaction.
#[derive(Default)]
struct Envelope {
    from: Option<String>,
    /// (address as written, integration)
    rcpts: Vec<(String, Integration)>,
    /// The SaaS support address is a recipient (SVC-171): the message becomes a ticket.
    support: bool,
}

async fn reply(w: &mut tokio::net::tcp::OwnedWriteHalf, text: &str) -> std::io::Result<()> {
    w.write_all(text.as_bytes()).await?;
    w.write_all(b"\r\n").await?;
    w.flush().await
}

/// Reads one line (without CRLF); `None` at EOF. Over-long lines are cut.
async fn read_line<R: AsyncBufReadExt + Unpin>(
    r: &mut R,
    buf: &mut Vec<u8>,
) -> std::io::Result<Option<()>> {
    buf.clear();
    let n = tokio::time::timeout(IDLE, r.read_until(b'\n', buf))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "idle"))??;
    if n == 0 {
        return Ok(None);
    }
    while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        buf.pop();
    }
    Ok(Some(()))
}

/// The address inside `<…>` after `FROM:`/`TO:`, and the rest (parameters).
fn path_arg(arg: &str) -> Option<(String, &str)> {
    let arg = arg.trim_start();
    if let Some(rest) = arg.strip_prefix('<') {
        let end = rest.find('>')?;
        Some((rest[..end].trim().to_owned(), rest[end + 1..].trim()))
    } else {
        let mut it = arg.splitn(2, ' ');
        let addr = it.next()?.trim().to_owned();
        Some((addr, it.next().unwrap_or("").trim()))
    }
}

async fn session(state: &AppState, stream: TcpStream) -> std::io::Result<()> {
    let domain = state.config.smtp.domain.clone();
    let max = state.config.smtp.max_message_bytes;
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    reply(&mut w, &format!("220 {domain} Klaxon ESMTP ready")).await?;
    let mut env = Envelope::default();
    let mut line = Vec::with_capacity(256);
    loop {
        if read_line(&mut r, &mut line).await?.is_none() {
            return Ok(());
        }
        line.truncate(MAX_LINE);
        let text = String::from_utf8_lossy(&line).to_string();
        let (verb, arg) = match text.split_once(' ') {
            Some((v, a)) => (v.to_ascii_uppercase(), a.to_owned()),
            None => (text.to_ascii_uppercase(), String::new()),
        };
        match verb.as_str() {
            "EHLO" => {
                env = Envelope::default();
                reply(
                    &mut w,
                    &format!("250-{domain}\r\n250-SIZE {max}\r\n250-8BITMIME\r\n250 PIPELINING"),
                )
                .await?;
            }
            "HELO" => {
                env = Envelope::default();
                reply(&mut w, &format!("250 {domain}")).await?;
            }
            "MAIL" => {
                let upper = arg.to_ascii_uppercase();
                let Some(rest) = upper.strip_prefix("FROM:").map(|_| &arg[5..]) else {
                    reply(&mut w, "501 5.5.4 Syntax: MAIL FROM:<address>").await?;
                    continue;
                };
                let Some((from, params)) = path_arg(rest) else {
                    reply(&mut w, "501 5.5.4 Syntax: MAIL FROM:<address>").await?;
                    continue;
                };
                // RFC 1870: a declared size above the limit is refused at once.
                let declared = params
                    .split_whitespace()
                    .find_map(|p| {
                        p.split_once('=')
                            .filter(|(k, _)| k.eq_ignore_ascii_case("SIZE"))
                    })
                    .and_then(|(_, v)| v.parse::<usize>().ok());
                if declared.is_some_and(|s| s > max) {
                    reply(
                        &mut w,
                        "552 5.3.4 Message size exceeds fixed maximum message size",
                    )
                    .await?;
                    continue;
                }
                env = Envelope {
                    from: Some(from),
                    ..Envelope::default()
                };
                reply(&mut w, "250 2.1.0 OK").await?;
            }
            "RCPT" => {
                if env.from.is_none() {
                    reply(&mut w, "503 5.5.1 MAIL first").await?;
                    continue;
                }
                let upper = arg.to_ascii_uppercase();
                let Some((to, _)) = upper.strip_prefix("TO:").and_then(|_| path_arg(&arg[3..]))
                else {
                    reply(&mut w, "501 5.5.4 Syntax: RCPT TO:<address>").await?;
                    continue;
                };
                if env.rcpts.len() >= MAX_RECIPIENTS {
                    reply(&mut w, "452 4.5.3 Too many recipients").await?;
                    continue;
                }
                if crate::support::is_support_address(state, &to) {
                    env.support = true;
                    reply(&mut w, "250 2.1.5 OK").await?;
                    continue;
                }
                match recipient(state, &to, &domain).await {
                    Ok(integration) => {
                        let duplicate = env
                            .rcpts
                            .iter()
                            .any(|(_, i)| i.integration_id == integration.integration_id);
                        if !duplicate {
                            env.rcpts.push((to.to_lowercase(), integration));
                        }
                        reply(&mut w, "250 2.1.5 OK").await?;
                    }
                    Err(code) => reply(&mut w, code).await?,
                }
            }
            "DATA" => {
                if env.rcpts.is_empty() && !env.support {
                    reply(&mut w, "503 5.5.1 RCPT first").await?;
                    continue;
                }
                reply(&mut w, "354 End data with <CR><LF>.<CR><LF>").await?;
                let (message, oversize) = read_data(&mut r, max).await?;
                let answer = if oversize {
                    "552 5.3.4 Message size exceeds fixed maximum message size".to_owned()
                } else {
                    deliver(state, &env, &message).await
                };
                env = Envelope::default();
                reply(&mut w, &answer).await?;
            }
            "RSET" => {
                env = Envelope::default();
                reply(&mut w, "250 2.0.0 OK").await?;
            }
            "NOOP" => reply(&mut w, "250 2.0.0 OK").await?,
            "VRFY" => reply(&mut w, "252 2.5.2 Cannot VRFY user").await?,
            "QUIT" => {
                reply(&mut w, &format!("221 2.0.0 {domain} closing")).await?;
                return Ok(());
            }
            "" => reply(&mut w, "500 5.5.2 Empty command").await?,
            _ => reply(&mut w, "502 5.5.2 Command not implemented").await?,
        }
    }
}

/// ING-211: the enabled e-mail integration of `to`, or the SMTP reply refusing it.
async fn recipient(state: &AppState, to: &str, domain: &str) -> Result<Integration, &'static str> {
    const UNKNOWN: &str = "550 5.1.1 No such mailbox";
    let Some((local, at)) = to.rsplit_once('@') else {
        return Err(UNKNOWN);
    };
    if !at.eq_ignore_ascii_case(domain) || local.is_empty() {
        return Err(UNKNOWN);
    }
    // Keys are lower-case hex: local parts match case-insensitively.
    let key = local.to_ascii_lowercase();
    if !key.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(UNKNOWN);
    }
    match state
        .keys
        .integration(&state.store, &key, state.clock.now())
        .await
    {
        Ok(Some(i)) if i.integration_type == "email" => {
            // ING-013: a tenant whose state refuses events gets 550 5.7.1 (purging or
            // purged: the unknown-recipient answer).
            if let Err(e) = crate::saas::check_inbound(state, i.account_id) {
                return Err(
                    if e.code == klaxon_core::error::ErrorCode::InvalidParameter {
                        UNKNOWN
                    } else {
                        "550 5.7.1 Service of this account is not available"
                    },
                );
            }
            if i.enabled {
                Ok(i)
            } else {
                Err("550 5.7.1 Mailbox disabled")
            }
        }
        Ok(_) => Err(UNKNOWN),
        Err(e) => {
            tracing::error!(error = %e, "smtp recipient lookup failed");
            Err("451 4.3.0 Temporary lookup failure")
        }
    }
}

/// Reads the DATA section up to the lone dot, removing dot-stuffing. Beyond `max` bytes the
/// rest is read and discarded (`oversize`).
async fn read_data<R: AsyncBufReadExt + Unpin>(
    r: &mut R,
    max: usize,
) -> std::io::Result<(Vec<u8>, bool)> {
    let mut message = Vec::new();
    let mut oversize = false;
    let mut line = Vec::with_capacity(1024);
    loop {
        line.clear();
        let n = tokio::time::timeout(IDLE, r.read_until(b'\n', &mut line))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "idle"))??;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "connection closed inside DATA",
            ));
        }
        let content = line.strip_suffix(b"\n").unwrap_or(&line);
        let content = content.strip_suffix(b"\r").unwrap_or(content);
        if content == b"." {
            return Ok((message, oversize));
        }
        if oversize {
            continue;
        }
        let content = content.strip_prefix(b".").unwrap_or(content);
        if message.len() + content.len() + 2 > max {
            oversize = true;
            message = Vec::new();
            continue;
        }
        message.extend_from_slice(content);
        message.extend_from_slice(b"\r\n");
    }
}

/// Parses the message and commits one event per recipient integration; the SMTP reply.
async fn deliver(state: &AppState, env: &Envelope, raw: &[u8]) -> String {
    let started = Instant::now();
    let mail = match parse_mail(raw) {
        Ok(m) => m,
        Err(e) => {
            metrics::counter!("klaxon_smtp_messages_total", "code" => "invalid").increment(1);
            return format!("554 5.6.0 {}", e.message);
        }
    };
    let now = state.clock.now();
    // ING-211 / ING-007: every recipient integration counts the message; a throttled one
    // makes the whole message a temporary failure, nothing ingested.
    for (_, i) in &env.rcpts {
        if let Admission::Throttled { .. } =
            state
                .limiter
                .admit_push(i.account_id, i.integration_id, now)
        {
            metrics::counter!("klaxon_smtp_messages_total", "code" => "throttled").increment(1);
            return "451 4.7.1 Rate limit exceeded, try again later".to_owned();
        }
    }
    let request_id = new_request_id();
    let mut rows: Vec<(EventOrigin, NewEvent)> = Vec::new();
    for (_, i) in &env.rcpts {
        let settings_json: Value =
            serde_json::from_str(&i.settings).unwrap_or(Value::Object(Default::default()));
        let settings = match EmailSettings::from_json(&settings_json) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(integration_id = i.integration_id, error = %e.message,
                    "stored e-mail settings are invalid");
                return "451 4.3.5 Integration misconfigured".to_owned();
            }
        };
        let address = address(i, &state.config.smtp.domain);
        match to_event(
            &mail,
            raw,
            i.integration_id,
            &address,
            &settings,
            now,
            &random_hex(16),
        ) {
            MailOutcome::Event(event) => rows.push((
                EventOrigin {
                    request_id: request_id.clone(),
                    account_id: i.account_id,
                    integration_id: i.integration_id,
                    integration_type: i.integration_type.clone(),
                    integration_name: i.integration_name.clone(),
                    channel_id: i.channel_id,
                    received_at: now,
                },
                *event,
            )),
            MailOutcome::DroppedUnmatched => {
                metrics::counter!("klaxon_smtp_messages_total", "code" => "dropped_unmatched_email")
                    .increment(1);
                tracing::info!(integration_id = i.integration_id, "dropped_unmatched_email");
            }
        }
    }
    if !rows.is_empty() {
        let count = rows.len() as u64;
        if let Err(e) = state.store.enqueue(rows).await {
            tracing::error!(error = %e, "cannot queue the e-mail event");
            return "451 4.3.0 Cannot store the message, try again later".to_owned();
        }
        metrics::counter!("klaxon_push_events_accepted_total").increment(count);
        state.inbox_ready.notify_one();
    }
    // SVC-171: the support desk files its copy last, so a temporary failure above never
    // leaves a ticket behind that the sender's retry would file twice.
    if env.support {
        match crate::support::file(state, &mail).await {
            Ok(received) => {
                let t = received.ticket();
                metrics::counter!("klaxon_smtp_messages_total", "code" => "support_ticket")
                    .increment(1);
                return format!("250 2.0.0 OK filed as ticket {}", t.ticket_id);
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot file the support mail");
                return "451 4.3.0 Cannot store the message, try again later".to_owned();
            }
        }
    }
    metrics::counter!("klaxon_smtp_messages_total", "code" => "OK").increment(1);
    metrics::histogram!("klaxon_push_latency_seconds").record(started.elapsed().as_secs_f64());
    format!("250 2.0.0 OK queued as {request_id}")
}
