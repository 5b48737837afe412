//! Support tickets (service-agreement.md §12, SVC-171…SVC-174; migration 0057).
//!
//! A received mail becomes a ticket, or a message of the ticket its subject names
//! (`[#<ticket id>]`), in one transaction together with the acknowledgement to send. Outbound
//! messages (acknowledgements, staff replies) are rows with `sent_at = 0` until a node has
//! sent them, so a crash between commit and send only delays them.
//!
//! The rules (tenant matching, categories, closing with a cause, service hours) are
//! `klaxon_saas::support`'s; this module stores what they decided.

use klaxon_core::model::Millis;
use klaxon_saas::SaasError;
use klaxon_saas::support::{Category, FaultCause, SenderMatch, check_close};
use sqlx::AnyConnection;
use sqlx::any::AnyRow;

use crate::db::Sql;
use crate::rows::{get_i64, get_str};
use crate::{Result, SaasFailure, Store, StoreError};

/// A refusal naming the field; nothing was changed.
fn refuse(field: &'static str, message: impl Into<String>) -> SaasFailure {
    SaasFailure::Rule(SaasError::Invalid {
        field,
        message: message.into(),
    })
}

fn no_ticket(ticket_id: i64) -> SaasFailure {
    SaasFailure::Rule(SaasError::Unknown {
        what: "ticket",
        id: u64::try_from(ticket_id).unwrap_or(0),
    })
}

/// Longest subject and body kept; a longer mail is cut (the rest stays with the sender).
pub const MAX_SUBJECT_CHARS: usize = 500;
pub const MAX_BODY_CHARS: usize = 100_000;

/// A mail to the support address, as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingMail {
    pub sender: String,
    pub subject: String,
    pub body: String,
    pub received_at: Millis,
}

/// What the operator's deployment contributes to a new ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SupportDesk {
    /// The support address acknowledgements are sent from and replies go to.
    pub address: String,
    /// The edition of a tenant without a billing row (the deployment's default edition).
    pub default_edition: String,
}

/// A ticket as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    pub ticket_id: i64,
    /// 0 while the tenant is unknown.
    pub account_id: i64,
    pub queue: String,
    pub candidates: Vec<i64>,
    pub category: String,
    pub status: String,
    pub sender: String,
    pub subject: String,
    pub source: String,
    pub received_at: Millis,
    pub edition: String,
    pub first_response_at: Millis,
    pub closed_at: Millis,
    pub cause: String,
    pub closed_by: String,
}

/// One message of a ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketMessage {
    pub message_id: i64,
    pub ticket_id: i64,
    pub direction: String,
    pub kind: String,
    pub author: String,
    pub recipient: String,
    pub subject: String,
    pub body: String,
    pub at: Millis,
    pub sent_at: Millis,
    pub attempts: i64,
    pub last_error: String,
}

/// What receiving a mail did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// A new ticket was opened.
    Opened(Ticket),
    /// The mail was a reply on an existing ticket (its subject named the ticket).
    Threaded(Ticket),
}

impl Received {
    pub fn ticket(&self) -> &Ticket {
        match self {
            Received::Opened(t) | Received::Threaded(t) => t,
        }
    }
}

const TICKET_COLUMNS: &str = "ticket_id, account_id, queue, candidates, category, status, sender, \
     subject, source, received_at, edition, first_response_at, closed_at, cause, closed_by";

const MESSAGE_COLUMNS: &str = "message_id, ticket_id, direction, kind, author, recipient, subject, \
     body, at, sent_at, attempts, last_error";

fn ticket_row(r: &AnyRow) -> Result<Ticket> {
    let candidates: Vec<i64> = serde_json::from_str(&get_str(r, "candidates")?)
        .map_err(|e| StoreError::Corrupt(format!("support_tickets.candidates: {e}")))?;
    Ok(Ticket {
        ticket_id: get_i64(r, "ticket_id")?,
        account_id: get_i64(r, "account_id")?,
        queue: get_str(r, "queue")?,
        candidates,
        category: get_str(r, "category")?,
        status: get_str(r, "status")?,
        sender: get_str(r, "sender")?,
        subject: get_str(r, "subject")?,
        source: get_str(r, "source")?,
        received_at: get_i64(r, "received_at")?,
        edition: get_str(r, "edition")?,
        first_response_at: get_i64(r, "first_response_at")?,
        closed_at: get_i64(r, "closed_at")?,
        cause: get_str(r, "cause")?,
        closed_by: get_str(r, "closed_by")?,
    })
}

fn message_row(r: &AnyRow) -> Result<TicketMessage> {
    Ok(TicketMessage {
        message_id: get_i64(r, "message_id")?,
        ticket_id: get_i64(r, "ticket_id")?,
        direction: get_str(r, "direction")?,
        kind: get_str(r, "kind")?,
        author: get_str(r, "author")?,
        recipient: get_str(r, "recipient")?,
        subject: get_str(r, "subject")?,
        body: get_str(r, "body")?,
        at: get_i64(r, "at")?,
        sent_at: get_i64(r, "sent_at")?,
        attempts: get_i64(r, "attempts")?,
        last_error: get_str(r, "last_error")?,
    })
}

fn cut(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

/// The ticket a subject names: `[#<id>]` anywhere in it (acknowledgements and replies carry
/// it, so a reply threads on the id).
pub fn ticket_reference(subject: &str) -> Option<i64> {
    let mut rest = subject;
    while let Some(start) = rest.find("[#") {
        let after = &rest[start + 2..];
        if let Some(end) = after.find(']')
            && let Ok(id) = after[..end].trim().parse::<i64>()
            && id > 0
        {
            return Some(id);
        }
        rest = after;
    }
    None
}

/// The subject every outbound message of a ticket carries.
pub fn ticket_subject(ticket_id: i64, subject: &str) -> String {
    let original = subject.trim();
    if ticket_reference(original) == Some(ticket_id) {
        original.to_string()
    } else if original.is_empty() {
        format!("[#{ticket_id}] Your support request")
    } else {
        format!("[#{ticket_id}] {original}")
    }
}

/// The acknowledgement's text (SVC-171): the ticket id, and for a sender in several tenants
/// the question which one is meant.
fn acknowledgement(ticket_id: i64, matched: &SenderMatch) -> String {
    let mut text = format!(
        "We have received your request and opened ticket #{ticket_id}.\r\n\
         Reply to this e-mail, keeping [#{ticket_id}] in the subject, to add to it.\r\n"
    );
    match matched {
        SenderMatch::Tenant(_) => {}
        SenderMatch::Ambiguous(ids) => {
            let list = ids
                .iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(", ");
            text.push_str(&format!(
                "\r\nYour address belongs to several accounts ({list}). Please reply with the \
                 id of the account this request is about.\r\n"
            ));
        }
        SenderMatch::Unverified => text.push_str(
            "\r\nYour address does not belong to any account we know. If the request concerns \
             an account, please write from an address of one of its members or name the \
             account id.\r\n",
        ),
    }
    text
}

async fn insert_message(conn: &mut AnyConnection, m: &TicketMessage) -> Result<i64> {
    let mut sql = Sql::new(
        "INSERT INTO support_messages (ticket_id, direction, kind, author, recipient, subject, \
         body, at, sent_at) VALUES (",
    );
    sql.bind(m.ticket_id)
        .push(", ")
        .bind(m.direction.as_str())
        .push(", ")
        .bind(m.kind.as_str())
        .push(", ")
        .bind(m.author.as_str())
        .push(", ")
        .bind(m.recipient.as_str())
        .push(", ")
        .bind(m.subject.as_str())
        .push(", ")
        .bind(m.body.as_str())
        .push(", ")
        .bind(m.at)
        .push(", ")
        .bind(m.sent_at)
        .push(") RETURNING message_id");
    let row = sql.query().fetch_one(&mut *conn).await?;
    get_i64(&row, "message_id")
}

async fn ticket_on(conn: &mut AnyConnection, ticket_id: i64) -> Result<Option<Ticket>> {
    let mut sql = Sql::new(&format!(
        "SELECT {TICKET_COLUMNS} FROM support_tickets WHERE ticket_id = "
    ));
    sql.bind(ticket_id);
    sql.query()
        .fetch_optional(&mut *conn)
        .await?
        .map(|r| ticket_row(&r))
        .transpose()
}

/// The tenants in which `email` is a member (any status but deleted).
async fn sender_tenants(conn: &mut AnyConnection, email: &str) -> Result<Vec<i64>> {
    let mut sql = Sql::new("SELECT DISTINCT account_id FROM members WHERE LOWER(email) = LOWER(");
    sql.bind(email.trim())
        .push(") AND status <> ")
        .bind(klaxon_core::directory::STATUS_DELETED);
    let rows = sql.query().fetch_all(&mut *conn).await?;
    rows.iter().map(|r| get_i64(r, "account_id")).collect()
}

/// The edition whose hours apply: the tenant's billing row, else the deployment default.
async fn edition_of(conn: &mut AnyConnection, account_id: i64, default: &str) -> Result<String> {
    if account_id == 0 {
        return Ok(default.to_string());
    }
    let mut sql = Sql::new("SELECT edition FROM saas_tenants WHERE account_id = ");
    sql.bind(account_id);
    match sql.query().fetch_optional(&mut *conn).await? {
        Some(r) => get_str(&r, "edition"),
        None => Ok(default.to_string()),
    }
}

impl Store {
    /// SVC-171: files a mail sent to the support address. A subject naming an existing
    /// ticket adds the mail to it; anything else opens a ticket in the sender's tenant (or
    /// the `ambiguous` / `unverified` queue) with category `consultation`, and queues its
    /// acknowledgement. One transaction: a mail is filed completely or not at all.
    pub async fn support_receive(
        &self,
        desk: &SupportDesk,
        mail: &IncomingMail,
    ) -> Result<Received> {
        let sender = mail.sender.trim().to_ascii_lowercase();
        let subject = cut(mail.subject.trim(), MAX_SUBJECT_CHARS);
        let body = cut(&mail.body, MAX_BODY_CHARS);
        let mut tx = self.inner.write.begin().await?;
        let conn: &mut AnyConnection = &mut tx;

        // A reply threads only onto a ticket of the same sender, so guessing an id does
        // not let anyone write into another tenant's ticket.
        if let Some(id) = ticket_reference(&subject)
            && let Some(ticket) = ticket_on(conn, id).await?
            && ticket.sender == sender
        {
            insert_message(
                conn,
                &TicketMessage {
                    message_id: 0,
                    ticket_id: id,
                    direction: "in".into(),
                    kind: "mail".into(),
                    author: sender.clone(),
                    recipient: desk.address.clone(),
                    subject: subject.clone(),
                    body,
                    at: mail.received_at,
                    sent_at: mail.received_at,
                    attempts: 0,
                    last_error: String::new(),
                },
            )
            .await?;
            // A closed ticket that gets a reply is open again.
            if ticket.status == "closed" {
                let mut sql = Sql::new(
                    "UPDATE support_tickets SET status = 'open', closed_at = 0, cause = '', \
                     closed_by = '' WHERE ticket_id = ",
                );
                sql.bind(id);
                sql.query().execute(&mut *conn).await?;
            }
            let ticket = ticket_on(conn, id)
                .await?
                .ok_or_else(|| StoreError::Corrupt(format!("ticket {id} vanished")))?;
            tx.commit().await?;
            return Ok(Received::Threaded(ticket));
        }

        let matched = SenderMatch::of(sender_tenants(conn, &sender).await?);
        let (account_id, candidates) = match &matched {
            SenderMatch::Tenant(id) => (*id, Vec::new()),
            SenderMatch::Ambiguous(ids) => (0, ids.clone()),
            SenderMatch::Unverified => (0, Vec::new()),
        };
        let edition = edition_of(conn, account_id, &desk.default_edition).await?;
        let candidates_json = serde_json::to_string(&candidates)
            .map_err(|e| StoreError::Corrupt(format!("candidates: {e}")))?;
        let mut sql = Sql::new(
            "INSERT INTO support_tickets (account_id, queue, candidates, category, sender, \
             subject, source, received_at, edition) VALUES (",
        );
        sql.bind(account_id)
            .push(", ")
            .bind(matched.queue())
            .push(", ")
            .bind(candidates_json)
            .push(", ")
            .bind(Category::Consultation.as_str())
            .push(", ")
            .bind(sender.as_str())
            .push(", ")
            .bind(subject.as_str())
            .push(", 'email', ")
            .bind(mail.received_at)
            .push(", ")
            .bind(edition)
            .push(") RETURNING ticket_id");
        let ticket_id = get_i64(&sql.query().fetch_one(&mut *conn).await?, "ticket_id")?;
        insert_message(
            conn,
            &TicketMessage {
                message_id: 0,
                ticket_id,
                direction: "in".into(),
                kind: "mail".into(),
                author: sender.clone(),
                recipient: desk.address.clone(),
                subject: subject.clone(),
                body,
                at: mail.received_at,
                sent_at: mail.received_at,
                attempts: 0,
                last_error: String::new(),
            },
        )
        .await?;
        insert_message(
            conn,
            &TicketMessage {
                message_id: 0,
                ticket_id,
                direction: "out".into(),
                kind: "ack".into(),
                author: desk.address.clone(),
                recipient: sender.clone(),
                subject: ticket_subject(ticket_id, &subject),
                body: acknowledgement(ticket_id, &matched),
                at: mail.received_at,
                sent_at: 0,
                attempts: 0,
                last_error: String::new(),
            },
        )
        .await?;
        let ticket = ticket_on(conn, ticket_id)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("ticket {ticket_id} vanished")))?;
        tx.commit().await?;
        Ok(Received::Opened(ticket))
    }

    /// One ticket with its messages, oldest first.
    pub async fn support_ticket(
        &self,
        ticket_id: i64,
    ) -> Result<Option<(Ticket, Vec<TicketMessage>)>> {
        let mut conn = self.inner.read.acquire().await?;
        let Some(ticket) = ticket_on(&mut conn, ticket_id).await? else {
            return Ok(None);
        };
        let mut sql = Sql::new(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM support_messages WHERE ticket_id = "
        ));
        sql.bind(ticket_id).push(" ORDER BY message_id");
        let rows = sql.query().fetch_all(&mut *conn).await?;
        let messages = rows.iter().map(message_row).collect::<Result<Vec<_>>>()?;
        Ok(Some((ticket, messages)))
    }

    /// Tickets, newest first: of one tenant, or of one queue, open ones only unless `all`.
    pub async fn support_tickets(
        &self,
        account_id: Option<i64>,
        queue: Option<&str>,
        all: bool,
    ) -> Result<Vec<Ticket>> {
        let mut sql = Sql::new(&format!(
            "SELECT {TICKET_COLUMNS} FROM support_tickets WHERE 1 = 1"
        ));
        if let Some(a) = account_id {
            sql.push(" AND account_id = ").bind(a);
        }
        if let Some(q) = queue {
            sql.push(" AND queue = ").bind(q);
        }
        if !all {
            sql.push(" AND status = 'open'");
        }
        sql.push(" ORDER BY ticket_id DESC");
        let rows = sql.query().fetch_all(&self.inner.read).await?;
        rows.iter().map(ticket_row).collect()
    }

    /// Staff triage (SVC-171): set the category, and the tenant of a ticket from the
    /// `ambiguous` or `unverified` queue (which then moves to the `tenant` queue and takes
    /// that tenant's edition for its hours).
    pub async fn support_triage(
        &self,
        desk: &SupportDesk,
        ticket_id: i64,
        category: Option<Category>,
        account_id: Option<i64>,
    ) -> std::result::Result<Ticket, SaasFailure> {
        let mut tx = self.inner.write.begin().await?;
        let conn: &mut AnyConnection = &mut tx;
        let ticket = ticket_on(conn, ticket_id)
            .await?
            .ok_or_else(|| no_ticket(ticket_id))?;
        if let Some(c) = category {
            let mut sql = Sql::new("UPDATE support_tickets SET category = ");
            sql.bind(c.as_str())
                .push(" WHERE ticket_id = ")
                .bind(ticket_id);
            sql.query().execute(&mut *conn).await?;
        }
        if let Some(a) = account_id {
            let mut exists = Sql::new("SELECT account_id FROM accounts WHERE account_id = ");
            exists.bind(a);
            if exists.query().fetch_optional(&mut *conn).await?.is_none() {
                return Err(refuse("account", format!("no account {a}")));
            }
            let edition = edition_of(conn, a, &desk.default_edition).await?;
            let mut sql = Sql::new("UPDATE support_tickets SET account_id = ");
            sql.bind(a)
                .push(", queue = 'tenant', candidates = '[]', edition = ")
                .bind(edition)
                .push(" WHERE ticket_id = ")
                .bind(ticket.ticket_id);
            sql.query().execute(&mut *conn).await?;
        }
        let ticket = ticket_on(conn, ticket_id)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("ticket {ticket_id} vanished")))?;
        tx.commit().await?;
        Ok(ticket)
    }

    /// A staff reply: queued to the sender, and the ticket's first response (SVC-173) if it
    /// had none.
    pub async fn support_reply(
        &self,
        ticket_id: i64,
        author: &str,
        body: &str,
        now: Millis,
    ) -> std::result::Result<TicketMessage, SaasFailure> {
        if body.trim().is_empty() {
            return Err(refuse("body", "a reply needs text"));
        }
        let mut tx = self.inner.write.begin().await?;
        let conn: &mut AnyConnection = &mut tx;
        let ticket = ticket_on(conn, ticket_id)
            .await?
            .ok_or_else(|| no_ticket(ticket_id))?;
        let mut message = TicketMessage {
            message_id: 0,
            ticket_id,
            direction: "out".into(),
            kind: "reply".into(),
            author: author.to_string(),
            recipient: ticket.sender.clone(),
            subject: ticket_subject(ticket_id, &ticket.subject),
            body: cut(body, MAX_BODY_CHARS),
            at: now,
            sent_at: 0,
            attempts: 0,
            last_error: String::new(),
        };
        message.message_id = insert_message(conn, &message).await?;
        if ticket.first_response_at == 0 {
            let mut sql = Sql::new("UPDATE support_tickets SET first_response_at = ");
            sql.bind(now).push(" WHERE ticket_id = ").bind(ticket_id);
            sql.query().execute(&mut *conn).await?;
        }
        tx.commit().await?;
        Ok(message)
    }

    /// SVC-174: closes a ticket; a fault ticket needs its cause.
    pub async fn support_close(
        &self,
        ticket_id: i64,
        cause: Option<FaultCause>,
        actor: &str,
        now: Millis,
    ) -> std::result::Result<Ticket, SaasFailure> {
        let mut tx = self.inner.write.begin().await?;
        let conn: &mut AnyConnection = &mut tx;
        let ticket = ticket_on(conn, ticket_id)
            .await?
            .ok_or_else(|| no_ticket(ticket_id))?;
        if ticket.status == "closed" {
            return Err(refuse(
                "ticket_id",
                format!("ticket {ticket_id} is already closed"),
            ));
        }
        let category = Category::parse(&ticket.category)
            .map_err(|e| StoreError::Corrupt(format!("support_tickets.category: {e}")))?;
        check_close(category, cause)?;
        let mut sql = Sql::new("UPDATE support_tickets SET status = 'closed', closed_at = ");
        sql.bind(now)
            .push(", cause = ")
            .bind(cause.map(|c| c.as_str()).unwrap_or(""))
            .push(", closed_by = ")
            .bind(actor)
            .push(" WHERE ticket_id = ")
            .bind(ticket_id);
        sql.query().execute(&mut *conn).await?;
        let ticket = ticket_on(conn, ticket_id)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("ticket {ticket_id} vanished")))?;
        tx.commit().await?;
        Ok(ticket)
    }

    /// Outbound messages not sent yet, oldest first.
    pub async fn support_outbox(&self, limit: i64) -> Result<Vec<TicketMessage>> {
        let mut sql = Sql::new(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM support_messages WHERE direction = 'out' \
             AND sent_at = 0 ORDER BY message_id LIMIT "
        ));
        sql.bind(limit);
        let rows = sql.query().fetch_all(&self.inner.read).await?;
        rows.iter().map(message_row).collect()
    }

    /// Records one send attempt of an outbound message: sent (at `now`) or failed (kept
    /// queued with the error).
    pub async fn support_mark_sent(
        &self,
        message_id: i64,
        outcome: std::result::Result<(), String>,
        now: Millis,
    ) -> Result<()> {
        let mut sql = Sql::new("UPDATE support_messages SET attempts = attempts + 1, ");
        match outcome {
            Ok(()) => sql.push("sent_at = ").bind(now).push(", last_error = ''"),
            Err(e) => sql.push("last_error = ").bind(cut(&e, 1000)),
        };
        sql.push(" WHERE message_id = ")
            .bind(message_id)
            .push(" AND sent_at = 0");
        sql.query().execute(&self.inner.write).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_thread_on_the_bracketed_id() {
        assert_eq!(ticket_reference("Re: [#42] Pages stopped"), Some(42));
        assert_eq!(ticket_reference("[#x] then [#7]"), Some(7));
        assert_eq!(ticket_reference("no reference #42"), None);
        assert_eq!(ticket_subject(42, "Re: [#42] Pages"), "Re: [#42] Pages");
        assert_eq!(ticket_subject(5, "Pages"), "[#5] Pages");
        assert_eq!(ticket_subject(5, " "), "[#5] Your support request");
    }
}
