-- Support tickets (service-agreement.md §12, SVC-171…SVC-174; docs/saas.md "Support").
-- Mail to the operator's support address becomes a ticket; its acknowledgement and staff
-- replies are outbound messages that the SaaS node sends (sent_at = 0 until sent, so a
-- restart loses none). Tickets are the operator's correspondence with the tenant: operator
-- records (SVC-180, SVC-223), kept through a purge.
-- Keep in step with ../postgres/0057_support_tickets.sql.

CREATE TABLE support_tickets (
    ticket_id         INTEGER PRIMARY KEY AUTOINCREMENT,
    -- 0 while the tenant is not known (queue `ambiguous` or `unverified`).
    account_id        INTEGER NOT NULL DEFAULT 0,
    queue             TEXT    NOT NULL,
    -- JSON array of the tenants the sender belongs to, when there are several.
    candidates        TEXT    NOT NULL DEFAULT '[]',
    category          TEXT    NOT NULL,
    status            TEXT    NOT NULL DEFAULT 'open',
    sender            TEXT    NOT NULL,
    subject           TEXT    NOT NULL,
    source            TEXT    NOT NULL,
    received_at       INTEGER NOT NULL,
    -- The edition whose service hours measure the ticket (SVC-172), fixed at receipt.
    edition           TEXT    NOT NULL,
    first_response_at INTEGER NOT NULL DEFAULT 0,
    closed_at         INTEGER NOT NULL DEFAULT 0,
    cause             TEXT    NOT NULL DEFAULT '',
    closed_by         TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX support_tickets_queue ON support_tickets (status, queue, received_at);
CREATE INDEX support_tickets_account ON support_tickets (account_id, received_at);

CREATE TABLE support_messages (
    message_id      INTEGER PRIMARY KEY AUTOINCREMENT,
    ticket_id       INTEGER NOT NULL,
    -- `in` (mail received) or `out` (acknowledgement or staff reply).
    direction       TEXT    NOT NULL,
    -- `mail`, `ack` or `reply`.
    kind            TEXT    NOT NULL,
    author          TEXT    NOT NULL,
    recipient       TEXT    NOT NULL DEFAULT '',
    subject         TEXT    NOT NULL,
    body            TEXT    NOT NULL,
    at              INTEGER NOT NULL,
    sent_at         INTEGER NOT NULL DEFAULT 0,
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX support_messages_ticket ON support_messages (ticket_id, message_id);
CREATE INDEX support_messages_outbox ON support_messages (direction, sent_at);
