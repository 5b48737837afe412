-- On-call schedules (response.md §1.13): one row per schedule, the core `Schedule` as JSON in
-- `definition` (layers, overrides, reminders and the version history of RSP-225).
CREATE TABLE schedules (
    schedule_id   INTEGER PRIMARY KEY,
    account_id    BIGINT  NOT NULL REFERENCES accounts (account_id),
    schedule_name TEXT    NOT NULL,
    definition    TEXT    NOT NULL,
    created_at    BIGINT  NOT NULL,
    updated_at    BIGINT  NOT NULL,
    deleted       BIGINT  NOT NULL DEFAULT 0
);
CREATE INDEX schedules_account ON schedules (account_id, deleted, schedule_id);
