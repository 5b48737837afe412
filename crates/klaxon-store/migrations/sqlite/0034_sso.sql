-- Single sign-on (response.md 1.24, RSP-570…RSP-578). Keep in step with
-- ../postgres/0034_sso.sql.
--
-- sso_configs: at most one configuration per account, with one active protocol. `settings` is
-- the JSON object of the protocol's non-secret fields (OIDC: issuer, client_id); `secret`
-- holds the protocol's secret (the OIDC client secret), which reads never return and the
-- export leaves out. The login domain is unique across the whole installation (RSP-571).
CREATE TABLE sso_configs (
    account_id               BIGINT NOT NULL PRIMARY KEY,
    enabled                  BIGINT NOT NULL,
    protocol                 TEXT   NOT NULL,
    login_domain             TEXT   NOT NULL,
    create_account_on_login  BIGINT NOT NULL,
    field_mapping            TEXT   NOT NULL,
    default_role_ids         TEXT   NOT NULL,
    settings                 TEXT   NOT NULL,
    secret                   TEXT   NOT NULL,
    created_at               BIGINT NOT NULL,
    updated_at               BIGINT NOT NULL
);
CREATE UNIQUE INDEX sso_configs_login_domain ON sso_configs (login_domain);

-- sso_logins: a sign-in started at the identity provider and not yet come back. The row is
-- found by the SHA-256 of the `state` parameter and used once; it holds the nonce and the
-- PKCE verifier the callback needs, so any node can finish a sign-in another node started.
CREATE TABLE sso_logins (
    state_hash     TEXT   NOT NULL PRIMARY KEY,
    account_id     BIGINT NOT NULL,
    login_domain   TEXT   NOT NULL,
    nonce          TEXT   NOT NULL,
    code_verifier  TEXT   NOT NULL,
    next_path      TEXT   NOT NULL,
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL
);
CREATE INDEX sso_logins_expires ON sso_logins (expires_at);
