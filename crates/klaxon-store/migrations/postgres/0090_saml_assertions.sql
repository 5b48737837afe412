-- SAML assertions already used to sign in (response.md RSP-574, docs/sign-in.md "IdP-initiated
-- sign-in"): an assertion is accepted once. Its ID is remembered until the assertion could no
-- longer be presented (its NotOnOrAfter plus the allowed clock skew), then purged. Keep in step
-- with ../sqlite/0090_saml_assertions.sql.
CREATE TABLE saml_assertions (
    account_id    BIGINT NOT NULL,
    assertion_id  TEXT   NOT NULL,
    expires_at    BIGINT NOT NULL,
    PRIMARY KEY (account_id, assertion_id)
);
CREATE INDEX saml_assertions_expires ON saml_assertions (expires_at);
