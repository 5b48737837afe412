-- Outbound alert and incident webhooks (response.md 1.18, §2.23 RSP-370…381; ingest.md §2.21
-- ING-250…253). Keep in step with ../postgres/0023_webhooks.sql.
--
-- `webhook_integrations`: the configuration. `integration_id` shares the id space of the
-- inbound `integrations` (the store checks both tables when it picks one). `signing_secret`
-- is kept in clear because every request is signed with it (HMAC); the API shows it once.
CREATE TABLE webhook_integrations (
    integration_id   BIGINT  PRIMARY KEY,
    account_id       BIGINT  NOT NULL,
    kind             TEXT    NOT NULL,
    name             TEXT    NOT NULL,
    endpoint         TEXT    NOT NULL,
    headers          TEXT    NOT NULL DEFAULT '{}',
    event_types      TEXT    NOT NULL DEFAULT '[]',
    channel_ids      TEXT    NOT NULL DEFAULT '[]',
    custom_body      TEXT    NOT NULL DEFAULT '',
    value_mapping    TEXT    NOT NULL DEFAULT '{}',
    team_id          BIGINT  NOT NULL DEFAULT 0,
    status           TEXT    NOT NULL,
    signing_secret   TEXT    NOT NULL,
    creator_id       BIGINT  NOT NULL DEFAULT 0,
    updated_by       BIGINT  NOT NULL DEFAULT 0,
    created_at       BIGINT  NOT NULL,
    updated_at       BIGINT  NOT NULL
);
CREATE INDEX webhook_integrations_account ON webhook_integrations (account_id, status);

-- `webhook_deliveries`: the durable outbox, one row per (event, integration), written in the
-- same transaction as the change that fired the event. `subject_id` is the incident or alert:
-- the events of one subject go to one integration one at a time, in `seq` order (RSP-375).
-- `snapshot` is the incident or alert row (JSON) as the change left it, so the payload shows
-- the state of that event even when it is sent later ('' = read the row when sending).
-- `body` is the JSON sent, fixed at the first attempt so a retry sends the same bytes.
-- `status`: queued | success | failed. Claims work like the notification outbox's.
CREATE TABLE webhook_deliveries (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id       BIGINT  NOT NULL,
    integration_id   BIGINT  NOT NULL,
    event_id         TEXT    NOT NULL,
    event_type       TEXT    NOT NULL,
    subject_id       TEXT    NOT NULL,
    event_time       BIGINT  NOT NULL,
    person_id        BIGINT  NOT NULL DEFAULT 0,
    snapshot         TEXT    NOT NULL DEFAULT '',
    status           TEXT    NOT NULL DEFAULT 'queued',
    attempts         BIGINT  NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT  NOT NULL DEFAULT 0,
    claimed_by       TEXT    NOT NULL DEFAULT '',
    claim_until      BIGINT  NOT NULL DEFAULT 0,
    body             TEXT    NOT NULL DEFAULT '',
    last_error       TEXT    NOT NULL DEFAULT '',
    created_at       BIGINT  NOT NULL,
    finished_at      BIGINT  NOT NULL DEFAULT 0
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at, seq);
CREATE INDEX webhook_deliveries_subject ON webhook_deliveries (integration_id, subject_id, status, seq);

-- `webhook_attempts`: the invocation history (RSP-379), one row per attempt, kept 7 days.
CREATE TABLE webhook_attempts (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    attempt_id       TEXT    NOT NULL UNIQUE,
    account_id       BIGINT  NOT NULL,
    integration_id   BIGINT  NOT NULL,
    delivery_seq     BIGINT  NOT NULL,
    event_id         TEXT    NOT NULL,
    event_type       TEXT    NOT NULL,
    ref_id           TEXT    NOT NULL,
    attempt          BIGINT  NOT NULL,
    status           TEXT    NOT NULL,
    endpoint         TEXT    NOT NULL,
    request_body     TEXT    NOT NULL,
    response_status  BIGINT  NOT NULL DEFAULT 0,
    response_body    TEXT    NOT NULL DEFAULT '',
    latency_ms       BIGINT  NOT NULL DEFAULT 0,
    error            TEXT    NOT NULL DEFAULT '',
    created_at       BIGINT  NOT NULL
);
CREATE INDEX webhook_attempts_account ON webhook_attempts (account_id, created_at, seq);
