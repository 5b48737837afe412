-- The SAML subject of each console session opened by a SAML sign-in (response.md RSP-574,
-- docs/sign-in.md "Single logout"): the assertion's NameID with its Format and qualifiers and
-- its SessionIndex, so a sign-out can send the IdP a LogoutRequest for that session and a
-- LogoutRequest from the IdP finds the sessions to end. Keyed by the session's hash (the
-- token itself is never stored); the row goes with its session and is purged when expired.
-- Keep in step with ../postgres/0091_saml_sessions.sql.
CREATE TABLE saml_sessions (
    session_hash       TEXT   PRIMARY KEY,
    account_id         BIGINT NOT NULL,
    member_id          BIGINT NOT NULL,
    login_domain       TEXT   NOT NULL,
    name_id            TEXT   NOT NULL,
    name_id_format     TEXT   NOT NULL DEFAULT '',
    name_qualifier     TEXT   NOT NULL DEFAULT '',
    sp_name_qualifier  TEXT   NOT NULL DEFAULT '',
    session_index      TEXT   NOT NULL DEFAULT '',
    created_at         BIGINT NOT NULL,
    expires_at         BIGINT NOT NULL
);
CREATE INDEX saml_sessions_subject ON saml_sessions (account_id, name_id);
CREATE INDEX saml_sessions_expires ON saml_sessions (expires_at);
