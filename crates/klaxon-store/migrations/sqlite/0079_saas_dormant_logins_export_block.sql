-- SaaS mode: dormant login identifiers (service-agreement.md SVC-009) and the export block a
-- termination for serious breach may carry (SVC-232; docs/saas.md "Dormant login
-- identifiers", "Termination and refunds"). Keep in step with ../postgres/0079_saas_dormant_logins_export_block.sql.

-- The last interactive sign-in of each membership (password, SSO, sign-in code, the
-- registration's own session); 0 = never. Memberships that signed in before this column
-- existed start from their activation. `login_deactivated_at` is set when the person's
-- login identifier was deactivated for dormancy (SVC-009); the membership itself stays.
ALTER TABLE members ADD COLUMN last_signin_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE members ADD COLUMN login_deactivated_at INTEGER NOT NULL DEFAULT 0;
UPDATE members SET last_signin_at = activated_at;

-- One row per dormancy notice: the login identifier (lower-case e-mail address), when the
-- notice was queued, when the identifier is deactivated unless the person signs in first,
-- and when it was (0 = not yet; a sign-in after the notice leaves the row as history).
CREATE TABLE saas_dormant_logins (
    login          TEXT   NOT NULL,
    noticed_at     INTEGER NOT NULL,
    deactivate_at  INTEGER NOT NULL,
    deactivated_at INTEGER NOT NULL DEFAULT 0,
    account_id     INTEGER NOT NULL,
    PRIMARY KEY (login, noticed_at)
);

-- SVC-232: staff may block the export of a tenant terminated for serious breach, with the
-- legal basis ('' = not blocked). The termination records the basis it was given.
ALTER TABLE saas_tenants ADD COLUMN export_blocked TEXT NOT NULL DEFAULT '';
ALTER TABLE saas_terminations ADD COLUMN export_block_basis TEXT NOT NULL DEFAULT '';
