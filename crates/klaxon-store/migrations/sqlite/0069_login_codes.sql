-- E-mail-code sign-in (response.md RSP-578, docs/sign-in.md). Keep in step with
-- ../postgres/0069_login_codes.sql.
--
-- A code is six digits: too few to store as a plain hash (all of them hash in a blink), so
-- each code has its own random salt and the row keeps SHA-256(salt || code). What keeps a
-- code from being guessed is the row's `tries` (at most 5 wrong ones), its short life and
-- the per-member limit on new codes; rows outlive their expiry for one rate-limit window so
-- the codes sent in the last hour can be counted.
CREATE TABLE login_codes (
    code_key      TEXT    PRIMARY KEY,
    account_id    BIGINT  NOT NULL,
    member_id     BIGINT  NOT NULL,
    salt          TEXT    NOT NULL,
    code_hash     TEXT    NOT NULL,
    tries         BIGINT  NOT NULL DEFAULT 0,
    created_at    BIGINT  NOT NULL,
    expires_at    BIGINT  NOT NULL,
    used_at       BIGINT  NOT NULL DEFAULT 0
);

CREATE INDEX login_codes_member ON login_codes (account_id, member_id, created_at);
