-- Ticket sync with Jira and ServiceNow (response.md 1.23, §2.24 RSP-403…406). Keep in step
-- with ../postgres/0060_ticket_sync.sql.
--
-- `ticket_sync_integrations`: one integration per row, in the shared integration id space.
-- `settings` is a JSON object of the system's non-secret connection settings (platform,
-- base_url, username, project_key, issue_type); `secret` is the API token or password and
-- `push_token` the credential of the ServiceNow inbound push URL (both left out of exports).
-- `channel_ids`, `filters`, `severity_mapping` and `field_mapping` are JSON.
CREATE TABLE ticket_sync_integrations (
    integration_id   BIGINT  PRIMARY KEY,
    account_id       BIGINT  NOT NULL,
    system           TEXT    NOT NULL,
    name             TEXT    NOT NULL,
    team_id          BIGINT  NOT NULL DEFAULT 0,
    channel_ids      TEXT    NOT NULL DEFAULT '[]',
    direction        TEXT    NOT NULL,
    trigger_mode     TEXT    NOT NULL,
    filters          TEXT    NOT NULL DEFAULT '[]',
    settings         TEXT    NOT NULL DEFAULT '{}',
    secret           TEXT    NOT NULL DEFAULT '',
    push_token       TEXT    NOT NULL DEFAULT '',
    severity_mapping TEXT    NOT NULL DEFAULT '{}',
    field_mapping    TEXT    NOT NULL DEFAULT '[]',
    status           TEXT    NOT NULL,
    creator_id       BIGINT  NOT NULL DEFAULT 0,
    updated_by       BIGINT  NOT NULL DEFAULT 0,
    created_at       BIGINT  NOT NULL,
    updated_at       BIGINT  NOT NULL
);
CREATE INDEX ticket_sync_integrations_account ON ticket_sync_integrations (account_id);
CREATE INDEX ticket_sync_integrations_push ON ticket_sync_integrations (push_token);

-- The external ticket of an incident: one per (integration, incident). `external_id` is the
-- system's record id (ServiceNow sys_id; the Jira issue id), `external_key` what people read
-- (INC0010001, OPS-12). `last_urgency` and `last_comment` remember what ServiceNow last sent,
-- so an update that repeats them changes nothing (RSP-406).
CREATE TABLE ticket_sync_links (
    account_id       BIGINT  NOT NULL,
    integration_id   BIGINT  NOT NULL,
    incident_id      TEXT    NOT NULL,
    external_id      TEXT    NOT NULL DEFAULT '',
    external_key     TEXT    NOT NULL DEFAULT '',
    external_url     TEXT    NOT NULL DEFAULT '',
    last_urgency     TEXT    NOT NULL DEFAULT '',
    last_comment     TEXT    NOT NULL DEFAULT '',
    created_at       BIGINT  NOT NULL,
    PRIMARY KEY (integration_id, incident_id)
);
CREATE INDEX ticket_sync_links_incident ON ticket_sync_links (account_id, incident_id);
CREATE INDEX ticket_sync_links_external ON ticket_sync_links (integration_id, external_id);

-- The durable outbox of outbound sync steps, which is also the sync log: `op` is create |
-- priority | status | comment, `payload` its JSON input; `status` queued | success | failed |
-- skipped. Only the oldest queued row of each (integration, incident) is claimed, so the
-- steps of one incident reach the system in order and after its create.
CREATE TABLE ticket_sync_jobs (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id       BIGINT  NOT NULL,
    integration_id   BIGINT  NOT NULL,
    incident_id      TEXT    NOT NULL,
    op               TEXT    NOT NULL,
    payload          TEXT    NOT NULL DEFAULT '{}',
    person_id        BIGINT  NOT NULL DEFAULT 0,
    status           TEXT    NOT NULL DEFAULT 'queued',
    attempts         BIGINT  NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT  NOT NULL DEFAULT 0,
    claimed_by       TEXT    NOT NULL DEFAULT '',
    claim_until      BIGINT  NOT NULL DEFAULT 0,
    response_status  BIGINT  NOT NULL DEFAULT 0,
    last_error       TEXT    NOT NULL DEFAULT '',
    external_key     TEXT    NOT NULL DEFAULT '',
    created_at       BIGINT  NOT NULL,
    finished_at      BIGINT  NOT NULL DEFAULT 0
);
CREATE INDEX ticket_sync_jobs_due ON ticket_sync_jobs (status, next_attempt_at, seq);
CREATE INDEX ticket_sync_jobs_subject ON ticket_sync_jobs (integration_id, incident_id, status, seq);
CREATE INDEX ticket_sync_jobs_account ON ticket_sync_jobs (account_id, integration_id, seq);
