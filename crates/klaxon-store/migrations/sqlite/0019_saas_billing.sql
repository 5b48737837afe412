-- SaaS mode: each tenant's billing standing, its append-only ledger and its overdue items
-- (service-agreement.md §2, §6, §9; docs/saas.md). Self-hosted installs never write here.
-- Keep in step with ../postgres/0019_saas_billing.sql. Amounts are decimal TEXT ("1990.00"),
-- never REAL: SQLite would round them through binary floating point.

CREATE TABLE saas_tenants (
    account_id    INTEGER PRIMARY KEY,
    profile       TEXT    NOT NULL,
    profile_reason TEXT   NOT NULL DEFAULT '',
    state         TEXT    NOT NULL,
    reason        TEXT    NOT NULL DEFAULT '',
    since         INTEGER NOT NULL,
    purge_at      INTEGER NOT NULL DEFAULT 0,
    edition       TEXT    NOT NULL,
    currency      TEXT    NOT NULL,
    funds_frozen  INTEGER NOT NULL DEFAULT 0,
    region        TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);

CREATE TABLE saas_ledger_entries (
    account_id     INTEGER NOT NULL,
    entry_id       INTEGER NOT NULL,
    posted_at      INTEGER NOT NULL,
    kind           TEXT    NOT NULL,
    from_account   TEXT    NOT NULL,
    to_account     TEXT    NOT NULL,
    amount         TEXT    NOT NULL,
    currency       TEXT    NOT NULL,
    reference      TEXT    NOT NULL,
    actor          TEXT    NOT NULL,
    explanation    TEXT    NOT NULL,
    reverses       INTEGER NOT NULL DEFAULT 0,
    charge         TEXT    NOT NULL DEFAULT '',
    lot_source     TEXT    NOT NULL DEFAULT '',
    lot_scope      TEXT    NOT NULL DEFAULT '',
    lot_expires_at INTEGER NOT NULL DEFAULT 0,
    lot_granted_by TEXT    NOT NULL DEFAULT '',
    list_value     TEXT,
    PRIMARY KEY (account_id, entry_id)
);

CREATE TRIGGER saas_ledger_no_update BEFORE UPDATE ON saas_ledger_entries
BEGIN
    SELECT RAISE(ABORT, 'saas_ledger_entries is append-only (SVC-085)');
END;
CREATE TRIGGER saas_ledger_no_delete BEFORE DELETE ON saas_ledger_entries
BEGIN
    SELECT RAISE(ABORT, 'saas_ledger_entries is append-only (SVC-085)');
END;

CREATE TABLE saas_overdue_items (
    account_id  INTEGER NOT NULL,
    item_id     INTEGER NOT NULL,
    origin      TEXT    NOT NULL,
    principal   TEXT    NOT NULL,
    due_date    TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (account_id, item_id)
);

CREATE TABLE saas_job_runs (
    account_id  INTEGER NOT NULL,
    job         TEXT    NOT NULL,
    run_for     TEXT    NOT NULL,
    ran_at      INTEGER NOT NULL,
    outcome     TEXT    NOT NULL,
    PRIMARY KEY (account_id, job, run_for)
);

CREATE TABLE saas_audit (
    audit_id    INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id  INTEGER NOT NULL,
    at          INTEGER NOT NULL,
    actor       TEXT    NOT NULL,
    action      TEXT    NOT NULL,
    detail      TEXT    NOT NULL
);
CREATE INDEX saas_audit_account ON saas_audit (account_id, at);
