-- SLA measurement, exclusions and claims (service-agreement.md §18, SVC-270…SVC-282;
-- docs/sla.md). SaaS mode only: a self-hosted install never writes here.
-- Keep in step with ../postgres/0058_sla.sql.

-- SVC-272: requests to the tenant's public API per 5-minute cycle (cycle_start in Unix ms,
-- aligned on :00, :05 … UTC). Nodes count in memory and add their counts with an upsert
-- every few seconds, so there is never a row per request.
CREATE TABLE sla_request_counts (
    account_id  INTEGER NOT NULL,
    cycle_start INTEGER NOT NULL,
    valid       INTEGER NOT NULL DEFAULT 0,
    failed      INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (account_id, cycle_start)
);

-- SVC-276 exclusions and SVC-239 maintenance windows, recorded by operators. account_id 0
-- means the whole region of this deployment. A maintenance window (category
-- announced_maintenance) excludes only when published_at is 48 h or more before starts_at.
CREATE TABLE sla_exclusions (
    exclusion_id INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id   INTEGER NOT NULL,
    category     TEXT    NOT NULL,
    starts_at    INTEGER NOT NULL,
    ends_at      INTEGER NOT NULL,
    published_at INTEGER NOT NULL DEFAULT 0,
    evidence     TEXT    NOT NULL,
    author       TEXT    NOT NULL,
    created_at   INTEGER NOT NULL
);
CREATE INDEX sla_exclusions_time ON sla_exclusions (account_id, starts_at);

-- SVC-273: periods when the API was unreachable because of the operator (account_id 0 =
-- every tenant of the region).
CREATE TABLE sla_unreachable (
    unreachable_id INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id     INTEGER NOT NULL,
    starts_at      INTEGER NOT NULL,
    ends_at        INTEGER NOT NULL,
    evidence       TEXT    NOT NULL,
    author         TEXT    NOT NULL,
    created_at     INTEGER NOT NULL
);
CREATE INDEX sla_unreachable_time ON sla_unreachable (account_id, starts_at);

-- SVC-280/281: one claim per tenant and month; a rejected claim may be submitted once more
-- (attempt 2). Figures are those computed at submission; approval posts the bonus lot.
CREATE TABLE sla_claims (
    claim_id       INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id     INTEGER NOT NULL,
    month          TEXT    NOT NULL,
    attempt        INTEGER NOT NULL,
    status         TEXT    NOT NULL,
    submitted_at   INTEGER NOT NULL,
    submitted_by   TEXT    NOT NULL,
    failed_minutes INTEGER NOT NULL,
    fee            TEXT    NOT NULL,
    amount         TEXT    NOT NULL,
    decided_at     INTEGER NOT NULL DEFAULT 0,
    decided_by     TEXT    NOT NULL DEFAULT '',
    reason         TEXT    NOT NULL DEFAULT '',
    granted        TEXT    NOT NULL DEFAULT '',
    lot_id         INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX sla_claims_attempt ON sla_claims (account_id, month, attempt);
