-- The response side (response.md §1.7–§1.12, §1.17): an incident's responders, assignment and
-- escalation state; escalation rules; the incident timeline; durable timers; and the
-- notification outbox. Keep in step with ../postgres/0005_response.sql.

-- `response` holds klaxon_core::response::Response as JSON; `snoozed_before` is also a column
-- so `is_snoozed` can filter on it.
ALTER TABLE incidents ADD COLUMN snoozed_before BIGINT NOT NULL DEFAULT 0;
ALTER TABLE incidents ADD COLUMN response TEXT NOT NULL DEFAULT '{}';

-- One row per rule; `definition` is klaxon_core::response::EscalationRule as JSON.
CREATE TABLE escalation_rules (
    rule_id    TEXT    PRIMARY KEY,
    account_id BIGINT  NOT NULL,
    channel_id BIGINT  NOT NULL,
    rule_name  TEXT    NOT NULL,
    priority   BIGINT  NOT NULL,
    status     TEXT    NOT NULL,
    definition TEXT    NOT NULL,
    created_at BIGINT  NOT NULL,
    updated_at BIGINT  NOT NULL
);
CREATE UNIQUE INDEX escalation_rules_name ON escalation_rules (account_id, channel_id, rule_name);
CREATE UNIQUE INDEX escalation_rules_priority ON escalation_rules (account_id, channel_id, priority);

-- The incident feed (response.md 1.10), ordered by (created_at, seq).
CREATE TABLE incident_timeline (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    entry_id    TEXT    NOT NULL UNIQUE,
    account_id  BIGINT  NOT NULL,
    incident_id TEXT    NOT NULL,
    ref_id      TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    creator_id  BIGINT  NOT NULL,
    created_at  BIGINT  NOT NULL,
    detail      TEXT    NOT NULL
);
CREATE INDEX incident_timeline_incident ON incident_timeline (account_id, incident_id, created_at, seq);

-- Durable timers: every future step of an incident is a row with the instant it is due.
-- `token` (incident, kind, instant) makes scheduling idempotent; a node claims due rows for a
-- lease period (`claimed_by`, `claim_until`) and deletes a row in the same transaction as the
-- step's effects, so a step happens once even if a node dies mid-way.
CREATE TABLE timers (
    timer_id    INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id  BIGINT  NOT NULL,
    incident_id TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    rank        BIGINT  NOT NULL,
    due_at      BIGINT  NOT NULL,
    token       TEXT    NOT NULL UNIQUE,
    claimed_by  TEXT    NOT NULL DEFAULT '',
    claim_until BIGINT  NOT NULL DEFAULT 0,
    created_at  BIGINT  NOT NULL
);
CREATE INDEX timers_due ON timers (due_at, rank);
CREATE INDEX timers_incident ON timers (incident_id);

-- The notification outbox (response.md 1.17): one row per decided send, written in the same
-- transaction as the state change that decided it. Delivery moves `status` on.
CREATE TABLE notifications (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    rid              TEXT    NOT NULL UNIQUE,
    account_id       BIGINT  NOT NULL,
    incident_id      TEXT    NOT NULL,
    firing_id        TEXT    NOT NULL,
    reason           TEXT    NOT NULL,
    fire_type        TEXT    NOT NULL,
    escalate_rule_id TEXT    NOT NULL,
    layer_idx        BIGINT  NOT NULL,
    channel          TEXT    NOT NULL,
    person_id        BIGINT  NOT NULL,
    target           TEXT    NOT NULL,
    severity         TEXT    NOT NULL,
    status           TEXT    NOT NULL DEFAULT 'queued',
    failed_reason    TEXT    NOT NULL DEFAULT '',
    created_at       BIGINT  NOT NULL,
    sent_at          BIGINT  NOT NULL DEFAULT 0
);
CREATE INDEX notifications_incident ON notifications (account_id, incident_id, created_at);
CREATE INDEX notifications_status ON notifications (status, created_at);

