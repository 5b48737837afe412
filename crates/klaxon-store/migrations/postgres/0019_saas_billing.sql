-- SaaS mode: each tenant's billing standing, its append-only ledger and its overdue items
-- (service-agreement.md §2, §6, §9; docs/saas.md). Self-hosted installs never write here.
-- Keep in step with ../sqlite/0019_saas_billing.sql. Amounts are NUMERIC, never float.

-- One row per billed tenant. The row is the lock every billing write takes first
-- (SELECT … FOR UPDATE), so two writers never both apply an operation to one book.
CREATE TABLE saas_tenants (
    account_id    BIGINT  PRIMARY KEY,
    profile       TEXT    NOT NULL,             -- commercial | exempt (SVC-401)
    profile_reason TEXT   NOT NULL DEFAULT '',
    state         TEXT    NOT NULL,             -- SVC-020 state name
    reason        TEXT    NOT NULL DEFAULT '',  -- suspended/ended reason, '' otherwise
    since         BIGINT  NOT NULL,             -- ms: when the state was entered
    purge_at      BIGINT  NOT NULL DEFAULT 0,   -- ms; 0 = none (SVC-140)
    edition       TEXT    NOT NULL,
    currency      TEXT    NOT NULL,
    funds_frozen  BIGINT  NOT NULL DEFAULT 0,   -- SVC-089
    region        TEXT    NOT NULL,             -- §14: chosen at creation, kept
    created_at    BIGINT  NOT NULL,
    updated_at    BIGINT  NOT NULL
);

-- SVC-085: append-only, double-entry. Ids are issued by the book (1, 2, 3 … per tenant);
-- the primary key makes a second writer with a stale book fail instead of forking it.
CREATE TABLE saas_ledger_entries (
    account_id     BIGINT  NOT NULL,
    entry_id       BIGINT  NOT NULL,
    posted_at      BIGINT  NOT NULL,            -- ms
    kind           TEXT    NOT NULL,
    from_account   TEXT    NOT NULL,
    to_account     TEXT    NOT NULL,
    amount         NUMERIC NOT NULL CHECK (amount >= 0),
    currency       TEXT    NOT NULL,
    reference      TEXT    NOT NULL,
    actor          TEXT    NOT NULL,
    explanation    TEXT    NOT NULL,
    reverses       BIGINT  NOT NULL DEFAULT 0,  -- 0 = not a reversal
    charge         TEXT    NOT NULL DEFAULT '',
    lot_source     TEXT    NOT NULL DEFAULT '',
    lot_scope      TEXT    NOT NULL DEFAULT '',
    lot_expires_at BIGINT  NOT NULL DEFAULT 0,
    lot_granted_by TEXT    NOT NULL DEFAULT '',
    list_value     NUMERIC,
    PRIMARY KEY (account_id, entry_id)
);

-- Entries are never changed or removed: mistakes are corrected by reversal entries.
CREATE FUNCTION saas_ledger_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'saas_ledger_entries is append-only (SVC-085)';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER saas_ledger_no_update BEFORE UPDATE OR DELETE ON saas_ledger_entries
    FOR EACH ROW EXECUTE FUNCTION saas_ledger_append_only();

-- SVC-130: the facts fixed when an item is created. Payments, write-offs and posted
-- penalties are ledger entries referencing `overdue-item:<id>`; they are not copied here.
CREATE TABLE saas_overdue_items (
    account_id  BIGINT  NOT NULL,
    item_id     BIGINT  NOT NULL,
    origin      TEXT    NOT NULL,
    principal   NUMERIC NOT NULL CHECK (principal > 0),
    due_date    TEXT    NOT NULL,               -- YYYY-MM-DD in billing_tz
    created_at  BIGINT  NOT NULL,
    PRIMARY KEY (account_id, item_id)
);

-- The daily overdue job, once per tenant and billing day: rerunning a day finds its row.
CREATE TABLE saas_job_runs (
    account_id  BIGINT  NOT NULL,
    job         TEXT    NOT NULL,
    run_for     TEXT    NOT NULL,               -- the billing day, YYYY-MM-DD
    ran_at      BIGINT  NOT NULL,
    outcome     TEXT    NOT NULL,
    PRIMARY KEY (account_id, job, run_for)
);

-- Every operator action and every state change, with who, when and what.
CREATE TABLE saas_audit (
    audit_id    BIGSERIAL PRIMARY KEY,
    account_id  BIGINT  NOT NULL,
    at          BIGINT  NOT NULL,
    actor       TEXT    NOT NULL,
    action      TEXT    NOT NULL,
    detail      TEXT    NOT NULL
);
CREATE INDEX saas_audit_account ON saas_audit (account_id, at);
