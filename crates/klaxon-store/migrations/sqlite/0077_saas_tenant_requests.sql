-- Requests about a whole tenant that staff carry out (service-agreement.md SVC-010, SVC-004;
-- docs/saas.md "Closing a tenant by e-mail", "Ownership transfer by staff"). Both are
-- operator records (SVC-180): a purge keeps them. Keep in step with
-- ../postgres/0077_saas_tenant_requests.sql.

-- A closure asked for by e-mail (SVC-010): staff send the owner a code, the owner's code
-- confirms the closure, which is a release (SVC-186). Only the code's SHA-256 is stored.
CREATE TABLE saas_closure_requests (
    request_id   INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id   INTEGER NOT NULL,
    ticket_id    INTEGER NOT NULL,
    keep_buffer  INTEGER NOT NULL DEFAULT 0,
    code_hash    TEXT    NOT NULL,
    requested_by TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    confirmed_at INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX saas_closure_requests_account ON saas_closure_requests (account_id, request_id);

-- A staff-assisted ownership transfer (SVC-004). status: pending | objected | done.
-- effective_at = the current owner's notice + 7 days; an objection stops it until staff
-- resume it with a new notice.
CREATE TABLE saas_ownership_transfers (
    transfer_id   INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id    INTEGER NOT NULL,
    from_member   INTEGER NOT NULL,
    to_member     INTEGER NOT NULL,
    documents     TEXT    NOT NULL,
    status        TEXT    NOT NULL,
    staff_id      INTEGER NOT NULL,
    created_at    INTEGER NOT NULL,
    notice_at     INTEGER NOT NULL,
    effective_at  INTEGER NOT NULL,
    objection     TEXT    NOT NULL DEFAULT '',
    done_at       INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX saas_ownership_transfers_due ON saas_ownership_transfers (status, effective_at);
