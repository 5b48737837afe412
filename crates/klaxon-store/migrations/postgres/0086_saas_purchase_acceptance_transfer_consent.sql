-- SaaS mode: acceptance at purchase (service-agreement.md SVC-033) and consent to cross-region
-- transfers (SVC-212, SVC-215; docs/saas.md "Acceptance at purchase", "Cross-region
-- transfers"). Keep in step with ../sqlite/0086_saas_purchase_acceptance_transfer_consent.sql.

-- One row per order and document version it accepted: who accepted (member and login at that
-- time, role), when, from where, and the version's label and text hash. `acceptance_id` is the
-- tenant's decision record on that version (saas_acceptances), written with method
-- `explicit_purchase` when this order was the tenant's first decision on it.
CREATE TABLE saas_order_acceptances (
    order_acceptance_id BIGSERIAL PRIMARY KEY,
    account_id      BIGINT  NOT NULL,
    order_kind      TEXT    NOT NULL,
    order_ref       TEXT    NOT NULL,
    version_id      BIGINT  NOT NULL,
    acceptance_id   BIGINT  NOT NULL,
    doc_type        TEXT    NOT NULL,
    version         TEXT    NOT NULL,
    content_sha256  TEXT    NOT NULL,
    member_id       BIGINT  NOT NULL,
    login           TEXT    NOT NULL,
    role            TEXT    NOT NULL,
    accepted_at     BIGINT  NOT NULL,
    client_ip       TEXT    NOT NULL DEFAULT '',
    user_agent      TEXT    NOT NULL DEFAULT '',
    client_type     TEXT    NOT NULL DEFAULT '',
    request_id      TEXT    NOT NULL DEFAULT '',
    recorded_by     TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX saas_order_acceptances_account ON saas_order_acceptances (account_id, order_acceptance_id);
CREATE FUNCTION saas_order_acceptances_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'saas_order_acceptances is append-only (SVC-033)';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER saas_order_acceptances_no_update BEFORE UPDATE OR DELETE ON saas_order_acceptances
    FOR EACH ROW EXECUTE FUNCTION saas_order_acceptances_append_only();

-- The owner's explicit consent to a transfer of the tenant's data out of its region: purpose,
-- destination region, data categories (JSON list), with the request's evidence. Revoking sets
-- `revoked_at`; the row stays as evidence.
CREATE TABLE saas_transfer_consents (
    consent_id          BIGSERIAL PRIMARY KEY,
    account_id          BIGINT  NOT NULL,
    purpose             TEXT    NOT NULL,
    destination_region  TEXT    NOT NULL,
    categories          TEXT    NOT NULL,
    given_by            BIGINT  NOT NULL,
    given_by_login      TEXT    NOT NULL,
    given_at            BIGINT  NOT NULL,
    client_ip           TEXT    NOT NULL DEFAULT '',
    user_agent          TEXT    NOT NULL DEFAULT '',
    request_id          TEXT    NOT NULL DEFAULT '',
    revoked_at          BIGINT  NOT NULL DEFAULT 0,
    revoked_by          BIGINT  NOT NULL DEFAULT 0
);
CREATE INDEX saas_transfer_consents_account ON saas_transfer_consents (account_id, consent_id);

-- Every cross-region transfer carried out, with the consent or lawful request it rests on
-- (exactly one of the two is non-zero).
CREATE TABLE saas_transfers (
    transfer_id         BIGSERIAL PRIMARY KEY,
    account_id          BIGINT  NOT NULL,
    purpose             TEXT    NOT NULL,
    destination_region  TEXT    NOT NULL,
    categories          TEXT    NOT NULL,
    consent_id          BIGINT  NOT NULL DEFAULT 0,
    lawful_request_id   BIGINT  NOT NULL DEFAULT 0,
    actor               TEXT    NOT NULL,
    at                  BIGINT  NOT NULL,
    package_sha256      TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX saas_transfers_account ON saas_transfers (account_id, transfer_id);
