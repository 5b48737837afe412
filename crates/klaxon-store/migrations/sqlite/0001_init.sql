-- Klaxon schema, SQLite dialect. Ids: INTEGER PRIMARY KEY (int64) or 24-hex text; instants:
-- BIGINT epoch milliseconds; booleans: BIGINT 0/1; maps and lists: JSON text.
-- Keep in step with ../postgres/0001_init.sql (same tables, columns and indexes), except for
-- the inbox: on SQLite it lives in a database file of its own (../sqlite-inbox), so that
-- accepting events and processing them have separate writers, and this file has the
-- `inbox_progress` watermark instead (ING-011; see src/inbox.rs).

CREATE TABLE accounts (
    account_id   INTEGER PRIMARY KEY,
    account_name TEXT    NOT NULL,
    email        TEXT    NOT NULL DEFAULT '',
    locale       TEXT    NOT NULL DEFAULT 'en-US',
    time_zone    TEXT    NOT NULL DEFAULT 'UTC',
    created_at   BIGINT  NOT NULL,
    updated_at   BIGINT  NOT NULL
);

CREATE TABLE members (
    member_id     INTEGER PRIMARY KEY,
    account_id    BIGINT  NOT NULL REFERENCES accounts (account_id),
    member_name   TEXT    NOT NULL,
    email         TEXT    NOT NULL,
    password_hash TEXT    NOT NULL DEFAULT '',
    status        TEXT    NOT NULL DEFAULT 'enabled',
    role_ids      TEXT    NOT NULL DEFAULT '[]',
    is_owner      BIGINT  NOT NULL DEFAULT 0,
    locale        TEXT    NOT NULL DEFAULT 'en-US',
    time_zone     TEXT    NOT NULL DEFAULT 'UTC',
    created_at    BIGINT  NOT NULL,
    updated_at    BIGINT  NOT NULL
);
CREATE UNIQUE INDEX members_account_email ON members (account_id, email);

-- The key itself is the bearer credential (openapi-compat.md 1.2).
CREATE TABLE app_keys (
    app_key    TEXT    PRIMARY KEY,
    account_id BIGINT  NOT NULL REFERENCES accounts (account_id),
    member_id  BIGINT  NOT NULL DEFAULT 0,
    key_name   TEXT    NOT NULL DEFAULT '',
    created_at BIGINT  NOT NULL
);
CREATE INDEX app_keys_member ON app_keys (account_id, member_id);

CREATE TABLE channels (
    channel_id           INTEGER PRIMARY KEY,
    account_id           BIGINT  NOT NULL REFERENCES accounts (account_id),
    channel_name         TEXT    NOT NULL,
    description          TEXT    NOT NULL DEFAULT '',
    team_id              BIGINT  NOT NULL DEFAULT 0,
    creator_id           BIGINT  NOT NULL DEFAULT 0,
    status               TEXT    NOT NULL DEFAULT 'enabled',
    auto_resolve_timeout BIGINT  NOT NULL DEFAULT 0,
    auto_resolve_mode    TEXT    NOT NULL DEFAULT 'trigger',
    created_at           BIGINT  NOT NULL,
    updated_at           BIGINT  NOT NULL
);
CREATE INDEX channels_account ON channels (account_id, channel_id);

CREATE TABLE integrations (
    integration_id   INTEGER PRIMARY KEY,
    account_id       BIGINT  NOT NULL REFERENCES accounts (account_id),
    integration_name TEXT    NOT NULL,
    integration_type TEXT    NOT NULL,
    kind             TEXT    NOT NULL,
    channel_id       BIGINT  NOT NULL DEFAULT 0,
    integration_key  TEXT    NOT NULL,
    enabled          BIGINT  NOT NULL DEFAULT 1,
    deleted          BIGINT  NOT NULL DEFAULT 0,
    last_event_time  BIGINT  NOT NULL DEFAULT 0,
    created_at       BIGINT  NOT NULL,
    updated_at       BIGINT  NOT NULL
);
CREATE UNIQUE INDEX integrations_key ON integrations (integration_key);
CREATE INDEX integrations_account ON integrations (account_id, channel_id);

-- Hop 2's watermark over the inbox file (ING-011): every inbox event with `seq <=
-- processed_seq` has been processed, and none above it. Updated in the same transaction as the
-- effects of the events it covers, so an event is processed iff its seq is at or below it.
CREATE TABLE inbox_progress (
    name          TEXT   PRIMARY KEY,
    processed_seq BIGINT NOT NULL DEFAULT 0
);
INSERT INTO inbox_progress (name, processed_seq) VALUES ('inbox', 0);

CREATE TABLE leases (
    name       TEXT   PRIMARY KEY,
    holder     TEXT   NOT NULL DEFAULT '',
    expires_at BIGINT NOT NULL DEFAULT 0
);
INSERT INTO leases (name, holder, expires_at) VALUES ('inbox', '', 0);

CREATE TABLE alerts (
    alert_id         TEXT    PRIMARY KEY,
    account_id       BIGINT  NOT NULL,
    channel_id       BIGINT  NOT NULL,
    integration_id   BIGINT  NOT NULL,
    integration_type TEXT    NOT NULL,
    integration_name TEXT    NOT NULL,
    alert_key        TEXT    NOT NULL,
    title            TEXT    NOT NULL,
    title_rule       TEXT    NOT NULL,
    description      TEXT    NOT NULL,
    alert_severity   TEXT    NOT NULL,
    alert_status     TEXT    NOT NULL,
    labels           TEXT    NOT NULL,
    images           TEXT    NOT NULL,
    start_time       BIGINT  NOT NULL,
    last_time        BIGINT  NOT NULL,
    end_time         BIGINT  NOT NULL,
    created_at       BIGINT  NOT NULL,
    updated_at       BIGINT  NOT NULL,
    event_cnt        BIGINT  NOT NULL,
    incident_id      TEXT    NOT NULL,
    closed           BIGINT  NOT NULL,
    close_time       BIGINT  NOT NULL,
    resolved_by      TEXT    NOT NULL,
    ever_muted       BIGINT  NOT NULL
);
-- The candidate lookup of ING-110: the newest active alert with this identity. alert_key
-- leads: the batch looks keys up with `alert_key IN (…)`, and PostgreSQL's generic plans
-- only use an IN list as an index condition when its column comes first (with it fourth,
-- every lookup scanned all active alerts of the integration).
CREATE INDEX alerts_candidate ON alerts (alert_key, account_id, channel_id, integration_id, created_at)
    WHERE closed = 0 AND alert_status <> 'Ok';
CREATE INDEX alerts_list ON alerts (account_id, start_time, alert_id);
CREATE INDEX alerts_incident ON alerts (account_id, incident_id);

CREATE TABLE incidents (
    incident_id       TEXT    PRIMARY KEY,
    num               TEXT    NOT NULL,
    account_id        BIGINT  NOT NULL,
    channel_id        BIGINT  NOT NULL,
    title             TEXT    NOT NULL,
    description       TEXT    NOT NULL,
    incident_severity TEXT    NOT NULL,
    incident_status   TEXT    NOT NULL,
    progress          TEXT    NOT NULL,
    start_time        BIGINT  NOT NULL,
    last_time         BIGINT  NOT NULL,
    end_time          BIGINT  NOT NULL,
    ack_time          BIGINT  NOT NULL,
    close_time        BIGINT  NOT NULL,
    created_at        BIGINT  NOT NULL,
    updated_at        BIGINT  NOT NULL,
    creator_id        BIGINT  NOT NULL,
    closer_id         BIGINT  NOT NULL,
    close_source      TEXT    NOT NULL,
    labels            TEXT    NOT NULL,
    alert_cnt         BIGINT  NOT NULL,
    active_alert_cnt  BIGINT  NOT NULL,
    alert_event_cnt   BIGINT  NOT NULL,
    group_method      TEXT    NOT NULL,
    group_key         TEXT    NOT NULL,
    last_merge_time   BIGINT  NOT NULL,
    first_alert_id    TEXT    NOT NULL,
    first_alert_key   TEXT    NOT NULL,
    integration_id    BIGINT  NOT NULL,
    integration_type  TEXT    NOT NULL,
    is_flapping       BIGINT  NOT NULL,
    storm_level       BIGINT  NOT NULL,
    manual_overrides  TEXT    NOT NULL
);
CREATE INDEX incidents_list ON incidents (account_id, start_time, incident_id);
CREATE INDEX incidents_num ON incidents (account_id, num);

CREATE TABLE events (
    event_id         TEXT    PRIMARY KEY,
    request_id       TEXT    NOT NULL,
    account_id       BIGINT  NOT NULL,
    channel_id       BIGINT  NOT NULL,
    integration_id   BIGINT  NOT NULL,
    integration_type TEXT    NOT NULL,
    alert_id         TEXT    NOT NULL,
    alert_key        TEXT    NOT NULL,
    event_status     TEXT    NOT NULL,
    event_severity   TEXT    NOT NULL,
    event_time       BIGINT  NOT NULL,
    received_at      BIGINT  NOT NULL,
    title            TEXT    NOT NULL,
    title_rule       TEXT    NOT NULL,
    description      TEXT    NOT NULL,
    labels           TEXT    NOT NULL,
    images           TEXT    NOT NULL,
    -- The source item as received, at most 64 KiB (ING-054).
    raw              TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX events_list ON events (account_id, event_time, event_id);
CREATE INDEX events_alert ON events (account_id, alert_id, event_time);
