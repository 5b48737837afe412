-- Tenant data governance (service-agreement.md SVC-192, SVC-194; docs/saas.md "Legal holds"
-- and "Data-security incidents"). Both are operator records (SVC-180, SVC-226): a purge
-- keeps them. Keep in step with ../postgres/0076_saas_governance.sql.

-- A legal hold placed by staff `legal` (SVC-192). scope is a comma-separated list of
-- all | incidents | configuration | members; review_on is YYYY-MM-DD in billing_tz.
-- lifted_at 0 = in force (from starts_at).
CREATE TABLE saas_legal_holds (
    hold_id             INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id          INTEGER NOT NULL,
    authority_reference TEXT    NOT NULL,
    scope               TEXT    NOT NULL,
    starts_at           INTEGER NOT NULL,
    review_on           TEXT    NOT NULL,
    notice_forbidden    INTEGER NOT NULL DEFAULT 0,
    placed_by           INTEGER NOT NULL,
    created_at          INTEGER NOT NULL,
    lifted_at           INTEGER NOT NULL DEFAULT 0,
    lifted_by           INTEGER NOT NULL DEFAULT 0,
    lift_reason         TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX saas_legal_holds_account ON saas_legal_holds (account_id, lifted_at);

-- A data-security incident (SVC-194) and the tenants it affected. data_types is a
-- comma-separated list; the notice ids are those of saas_notices whose related is
-- `security_incident:<incident_id>`.
CREATE TABLE saas_security_incidents (
    incident_id  INTEGER PRIMARY KEY AUTOINCREMENT,
    data_types   TEXT    NOT NULL,
    window_start INTEGER NOT NULL,
    window_end   INTEGER NOT NULL,
    impact       TEXT    NOT NULL,
    remediation  TEXT    NOT NULL,
    recorded_by  INTEGER NOT NULL,
    created_at   INTEGER NOT NULL
);

CREATE TABLE saas_security_incident_tenants (
    incident_id INTEGER NOT NULL,
    account_id  INTEGER NOT NULL,
    PRIMARY KEY (incident_id, account_id)
);
CREATE INDEX saas_security_incident_tenants_account ON saas_security_incident_tenants (account_id);
