-- Self-service registration and the tenant directory (service-agreement.md SVC-001 … SVC-011,
-- §14; docs/registration.md). Keep in step with ../sqlite/0059_saas_registration.sql.

-- One-time codes proving an e-mail address (SVC-001): only a salted SHA-256 of the code is
-- kept. Not a tenant's row: a code exists before any tenant does.
CREATE TABLE saas_registration_codes (
    code_id     BIGSERIAL PRIMARY KEY,
    email       TEXT    NOT NULL,
    salt        TEXT    NOT NULL,
    code_hash   TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL,
    attempts    BIGINT  NOT NULL DEFAULT 0,
    used_at     BIGINT  NOT NULL DEFAULT 0,
    client_ip   TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX saas_registration_codes_email ON saas_registration_codes (email, created_at);

-- The tenant directory (SVC-213): which region each tenant is in. The region never changes
-- (SVC-210, SVC-215): the database refuses an update of it.
CREATE TABLE saas_tenant_directory (
    account_id  BIGINT  PRIMARY KEY,
    region      TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL,
    source      TEXT    NOT NULL
);
CREATE FUNCTION saas_tenant_directory_region_fixed() RETURNS trigger AS $$
BEGIN
    IF NEW.region <> OLD.region THEN
        RAISE EXCEPTION 'a tenant stays in its region (SVC-215)';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER saas_tenant_directory_region_fixed BEFORE UPDATE ON saas_tenant_directory
    FOR EACH ROW EXECUTE FUNCTION saas_tenant_directory_region_fixed();

-- The legal entity of a tenant (SVC-002, SVC-007).
CREATE TABLE saas_legal_entities (
    account_id   BIGINT  PRIMARY KEY,
    entity_type  TEXT    NOT NULL,
    legal_name   TEXT    NOT NULL,
    verification TEXT    NOT NULL DEFAULT 'unverified',
    created_at   BIGINT  NOT NULL,
    updated_at   BIGINT  NOT NULL
);

-- The contact record notices go to (SVC-005): the owner's verified e-mail address at first.
CREATE TABLE saas_contacts (
    account_id          BIGINT  PRIMARY KEY,
    owner_email         TEXT    NOT NULL,
    owner_email_verified_at BIGINT NOT NULL DEFAULT 0,
    owner_mobile        TEXT    NOT NULL DEFAULT '',
    owner_mobile_verified_at BIGINT NOT NULL DEFAULT 0,
    billing_email       TEXT    NOT NULL DEFAULT '',
    updated_at          BIGINT  NOT NULL
);
