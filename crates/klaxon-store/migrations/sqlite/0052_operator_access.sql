-- Operator access to tenant data (service-agreement.md §15, SVC-220 … SVC-226;
-- docs/saas.md "Operator access"). Staff identities, the tenants' access grants and the
-- lawful-request register are operator records (SVC-180, SVC-226): a purge keeps them.
-- Keep in step with ../postgres/0052_operator_access.sql.

-- The operator's staff. The token is shown once and stored as its SHA-256, like APP keys.
CREATE TABLE saas_staff (
    staff_id    INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT    NOT NULL,
    role        TEXT    NOT NULL,
    token_hash  TEXT    NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL,
    created_by  TEXT    NOT NULL,
    revoked_at  INTEGER NOT NULL DEFAULT 0
);

-- A tenant's grant (SVC-221). grantee_staff_id 0 = the support team; channel_ids is a
-- JSON array, empty for every channel. expiry_recorded marks that the expiry was written
-- to the tenant's audit log.
CREATE TABLE saas_access_grants (
    grant_id          INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id        INTEGER NOT NULL,
    grantee_staff_id  INTEGER NOT NULL,
    scope             TEXT    NOT NULL,
    channel_ids       TEXT    NOT NULL,
    purpose           TEXT    NOT NULL,
    ticket_id         TEXT    NOT NULL,
    starts_at         INTEGER NOT NULL,
    ends_at           INTEGER NOT NULL,
    created_at        INTEGER NOT NULL,
    created_by        INTEGER NOT NULL,
    revoked_at        INTEGER NOT NULL DEFAULT 0,
    revoked_by        INTEGER NOT NULL DEFAULT 0,
    expiry_recorded   INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX saas_access_grants_account ON saas_access_grants (account_id, grant_id);
CREATE INDEX saas_access_grants_expiry ON saas_access_grants (expiry_recorded, ends_at);

-- The lawful-request register (SVC-224/225). Dates are YYYY-MM-DD text; instants are ms.
-- nondisclosure_until 0 = no end date (in force until nondisclosure_lapsed_at is set).
CREATE TABLE saas_lawful_requests (
    request_id              INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id              INTEGER NOT NULL,
    authority               TEXT    NOT NULL,
    legal_basis             TEXT    NOT NULL,
    reference               TEXT    NOT NULL,
    received_on             TEXT    NOT NULL,
    scope_requested         TEXT    NOT NULL,
    nondisclosure           INTEGER NOT NULL,
    nondisclosure_until     INTEGER NOT NULL DEFAULT 0,
    nondisclosure_lapsed_at INTEGER NOT NULL DEFAULT 0,
    notice_decision         TEXT    NOT NULL,
    notified_on             TEXT    NOT NULL DEFAULT '',
    recorded_by             INTEGER NOT NULL,
    created_at              INTEGER NOT NULL,
    approvers               TEXT    NOT NULL DEFAULT '',
    scope_disclosed         TEXT    NOT NULL DEFAULT '',
    disclosed_at            INTEGER NOT NULL DEFAULT 0,
    disclosure_method       TEXT    NOT NULL DEFAULT '',
    package_sha256          TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX saas_lawful_requests_account ON saas_lawful_requests (account_id, request_id);

-- Staff-access records in the tenant's audit log (SVC-222) that belong to a lawful
-- request stay hidden from the tenant while its non-disclosure order is in force (SVC-224).
ALTER TABLE audit_log ADD COLUMN lawful_request_id INTEGER NOT NULL DEFAULT 0;
