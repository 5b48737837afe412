-- A member's change of e-mail address or phone number needs a code sent to the new one
-- (response.md RSP-333; docs/members-and-teams.md). Only a salted SHA-256 of the code is
-- kept; the new value is written to the member only when the right code comes back.
-- Keep in step with ../postgres/0075_contact_verifications.sql.
CREATE TABLE contact_verifications (
    verification_id INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id      INTEGER NOT NULL,
    member_id       INTEGER NOT NULL,
    -- `email` or `phone`.
    kind            TEXT    NOT NULL,
    -- The address, or the phone in E.164, the code was sent to.
    target          TEXT    NOT NULL,
    country_code    TEXT    NOT NULL DEFAULT '',
    salt            TEXT    NOT NULL,
    code_hash       TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    used_at         INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX contact_verifications_member
    ON contact_verifications (account_id, member_id, kind, created_at);
CREATE INDEX contact_verifications_target ON contact_verifications (kind, target, created_at);
