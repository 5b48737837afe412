-- Change events and change records (ingest.md §1.3.8, §2.20; openapi-compat.md §2.13).
-- Keep in step with ../sqlite/0014_changes.sql.

-- One change record per (integration, change_key) period: a terminal record (Done/Canceled)
-- followed by a non-terminal event starts a new record (ING-242).
CREATE TABLE changes (
    change_id       TEXT    PRIMARY KEY,
    account_id      BIGINT  NOT NULL,
    integration_id  BIGINT  NOT NULL,
    change_key      TEXT    NOT NULL,
    title           TEXT    NOT NULL,
    description     TEXT    NOT NULL,
    change_status   TEXT    NOT NULL,
    link            TEXT    NOT NULL,
    labels          TEXT    NOT NULL,
    start_time      BIGINT  NOT NULL,
    last_time       BIGINT  NOT NULL,
    end_time        BIGINT  NOT NULL DEFAULT 0,
    event_cnt       BIGINT  NOT NULL DEFAULT 0
);
CREATE INDEX changes_account_start ON changes (account_id, start_time);

-- The latest record of each key. Writing this row first serialises concurrent events of one
-- key (a row lock in PostgreSQL, the single writer in SQLite).
CREATE TABLE change_heads (
    account_id      BIGINT  NOT NULL,
    integration_id  BIGINT  NOT NULL,
    change_key      TEXT    NOT NULL,
    change_id       TEXT    NOT NULL,
    PRIMARY KEY (account_id, integration_id, change_key)
);

-- Every change event is stored (ING-242).
CREATE TABLE change_events (
    event_id        TEXT    PRIMARY KEY,
    account_id      BIGINT  NOT NULL,
    change_id       TEXT    NOT NULL,
    integration_id  BIGINT  NOT NULL,
    change_key      TEXT    NOT NULL,
    title           TEXT    NOT NULL,
    description     TEXT    NOT NULL,
    change_status   TEXT    NOT NULL,
    link            TEXT    NOT NULL,
    labels          TEXT    NOT NULL,
    event_time      BIGINT  NOT NULL,
    created_at      BIGINT  NOT NULL
);
CREATE INDEX change_events_change ON change_events (account_id, change_id, event_time);
