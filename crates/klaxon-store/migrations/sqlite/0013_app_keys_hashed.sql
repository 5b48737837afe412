-- APP keys stored hashed (response.md §1.26, RSP-610 … RSP-612), console sessions and sign-in
-- lockout (docs/sign-in.md).
--
-- `key_hash` is the lower-case hex SHA-256 of the key. SQLite has no SHA-256 function, so
-- existing plain keys are copied as 'plain:<key>' and hashed by the store right after the
-- migrations run (Store::migrate → signin::hash_plain_app_keys), in the same start.
CREATE TABLE app_keys_hashed (
    -- AUTOINCREMENT: a deleted key's id is never given to a new key.
    key_id       INTEGER PRIMARY KEY AUTOINCREMENT,
    key_hash     TEXT    NOT NULL UNIQUE,
    account_id   BIGINT  NOT NULL REFERENCES accounts (account_id),
    -- 0 = an account-level key (§1.26), acting as the owner.
    member_id    BIGINT  NOT NULL DEFAULT 0,
    key_name     TEXT    NOT NULL DEFAULT '',
    -- The last four characters, so a key can be recognised in a list.
    key_hint     TEXT    NOT NULL DEFAULT '',
    created_at   BIGINT  NOT NULL,
    last_used_at BIGINT  NOT NULL DEFAULT 0
);
INSERT INTO app_keys_hashed (key_hash, account_id, member_id, key_name, key_hint, created_at)
SELECT 'plain:' || app_key, account_id, member_id, key_name, substr(app_key, -4), created_at
FROM app_keys ORDER BY created_at, app_key;
DROP TABLE app_keys;
ALTER TABLE app_keys_hashed RENAME TO app_keys;
CREATE INDEX app_keys_member ON app_keys (account_id, member_id);

-- Console sessions: the cookie holds a random token, the table its SHA-256.
CREATE TABLE sessions (
    session_hash TEXT    PRIMARY KEY,
    account_id   BIGINT  NOT NULL REFERENCES accounts (account_id),
    member_id    BIGINT  NOT NULL,
    csrf_token   TEXT    NOT NULL,
    created_at   BIGINT  NOT NULL,
    expires_at   BIGINT  NOT NULL
);
CREATE INDEX sessions_member ON sessions (account_id, member_id);
CREATE INDEX sessions_expiry ON sessions (expires_at);

-- Failed sign-ins per lower-cased login name, for throttling and lockout.
CREATE TABLE login_failures (
    login        TEXT    PRIMARY KEY,
    failures     BIGINT  NOT NULL DEFAULT 0,
    window_start BIGINT  NOT NULL DEFAULT 0,
    locked_until BIGINT  NOT NULL DEFAULT 0
);
