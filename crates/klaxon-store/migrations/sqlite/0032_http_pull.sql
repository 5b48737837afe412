-- HTTP pull integrations (ingest.md §2.19, ING-221 … ING-229). Keep in step with
-- ../postgres/0032_http_pull.sql.
--
-- `pull_schedules`: one row per http_pull integration that has been looked at by the
-- scheduler. `next_due_at` (ms) is the next *scheduled* start; `last_pull_time` (s) is the
-- .NowTime of the last pull that finished without failure, or the .NowTime − cycle the first
-- pull used if none has (0 = no pull yet); `running_until`
-- (ms) is the lease of the pull in progress, held by `holder` (0 = none running), so two
-- pulls of one integration never overlap, on one node or several; `last_manual_at` (ms) is
-- the last manual trigger (ING-228 cooldown).
CREATE TABLE pull_schedules (
    integration_id  BIGINT  PRIMARY KEY,
    account_id      BIGINT  NOT NULL,
    next_due_at     BIGINT  NOT NULL,
    last_pull_time  BIGINT  NOT NULL DEFAULT 0,
    running_until   BIGINT  NOT NULL DEFAULT 0,
    holder          TEXT    NOT NULL DEFAULT '',
    last_manual_at  BIGINT  NOT NULL DEFAULT 0
);

-- `pull_history`: one row per finished pull (ING-229); the newest 100 per integration are
-- kept. Times in ms; `trigger_kind` schedule | manual; `status` success | partial | failed.
CREATE TABLE pull_history (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id       BIGINT  NOT NULL,
    integration_id   BIGINT  NOT NULL,
    started_at       BIGINT  NOT NULL,
    ended_at         BIGINT  NOT NULL,
    trigger_kind     TEXT    NOT NULL,
    status           TEXT    NOT NULL,
    pages            BIGINT  NOT NULL,
    items_received   BIGINT  NOT NULL,
    items_accepted   BIGINT  NOT NULL,
    items_skipped    BIGINT  NOT NULL,
    items_truncated  BIGINT  NOT NULL,
    error            TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX pull_history_integration ON pull_history (account_id, integration_id, seq);
