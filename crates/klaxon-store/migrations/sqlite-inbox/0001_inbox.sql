-- Klaxon's inbox, SQLite only: its own database file beside the main one (`<stem>-inbox.db`),
-- written by the group committer alone, so accepting events never waits for processing.
-- PostgreSQL keeps the same table in its single database (../postgres/0001_init.sql).

-- Hop 1 → hop 2: accepted events in arrival order (ING-011). AUTOINCREMENT keeps `seq`
-- increasing even after the table was emptied; since SQLite assigns it under the database's
-- single write lock, seqs become visible in commit order, which is what lets the main
-- database's `inbox_progress.processed_seq` watermark say exactly what was processed.
CREATE TABLE inbox (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id       BIGINT  NOT NULL,
    channel_id       BIGINT  NOT NULL,
    integration_id   BIGINT  NOT NULL,
    integration_type TEXT    NOT NULL,
    integration_name TEXT    NOT NULL,
    request_id       TEXT    NOT NULL,
    received_at      BIGINT  NOT NULL,
    event            TEXT    NOT NULL
);
