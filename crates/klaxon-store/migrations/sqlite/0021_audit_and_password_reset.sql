-- The audit log (response.md §1.25, §2.32; docs/audit-log.md). Keep in step with
-- ../postgres/0021_audit_and_password_reset.sql. One row per write call (console or API) and per sign-in,
-- successful or failed. `seq` orders rows written within one millisecond.

CREATE TABLE audit_log (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id    INTEGER NOT NULL,
    request_id    TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    member_id     INTEGER NOT NULL,
    member_name   TEXT    NOT NULL DEFAULT '',
    app_key_id    INTEGER NOT NULL DEFAULT 0,
    source        TEXT    NOT NULL,
    operation     TEXT    NOT NULL,
    resource_type TEXT    NOT NULL DEFAULT '',
    resource_id   TEXT    NOT NULL DEFAULT '',
    ip            TEXT    NOT NULL DEFAULT '',
    is_write      INTEGER NOT NULL DEFAULT 1,
    is_dangerous  INTEGER NOT NULL DEFAULT 0,
    body          TEXT    NOT NULL DEFAULT '{}',
    result        TEXT    NOT NULL
);

CREATE INDEX audit_log_account_time ON audit_log (account_id, created_at, seq);
CREATE INDEX audit_log_time ON audit_log (created_at);

-- Password reset by e-mail (docs/sign-in.md): single-use, time-limited tokens, stored as
-- their SHA-256 like sessions. Rows outlive their expiry for one rate-limit window so the
-- number of requests per member can be counted.
CREATE TABLE password_resets (
    token_hash    TEXT    PRIMARY KEY,
    account_id    INTEGER NOT NULL,
    member_id     INTEGER NOT NULL,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    used_at       INTEGER NOT NULL DEFAULT 0
);

CREATE INDEX password_resets_member ON password_resets (account_id, member_id, created_at);
