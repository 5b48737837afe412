-- SaaS mode: lifting an export block (service-agreement.md SVC-232, SVC-237), the delivery
-- providers of each region (SVC-214) and the operator's signing key with the signatures of
-- purge certificates (SVC-191). docs/saas.md "Lifting an export block", "Delivery
-- providers", docs/backup.md "Signed certificates". Keep in step with
-- ../postgres/0087_saas_export_lifts_providers_signing.sql.

-- Each lift of a tenant's export block: the basis it lifted, the written reasons, the
-- decision it rests on (an appeal ticket or the authority's release), the two staff members.
CREATE TABLE saas_export_block_lifts (
    lift_id     INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id  INTEGER NOT NULL,
    basis       TEXT    NOT NULL,
    reason      TEXT    NOT NULL,
    reference   TEXT    NOT NULL,
    proposer    TEXT    NOT NULL,
    approver    TEXT    NOT NULL,
    lifted_at   INTEGER NOT NULL,
    actor       TEXT    NOT NULL
);
CREATE INDEX saas_export_block_lifts_account ON saas_export_block_lifts (account_id, lift_id);

-- The notification providers used in each region (message contents reach them): channel
-- (sms, voice, email, im, push), provider name, where it processes messages. A change ends
-- the old row (`removed_at`) and adds a new one, so the history stays; `change_notice_id`
-- ties a row to the announcement of the change.
CREATE TABLE saas_region_providers (
    provider_row_id INTEGER PRIMARY KEY AUTOINCREMENT,
    region          TEXT    NOT NULL,
    channel         TEXT    NOT NULL,
    provider        TEXT    NOT NULL,
    location        TEXT    NOT NULL,
    added_at        INTEGER NOT NULL,
    removed_at      INTEGER NOT NULL DEFAULT 0,
    effective_at    INTEGER NOT NULL,
    actor           TEXT    NOT NULL
);
CREATE INDEX saas_region_providers_region ON saas_region_providers (region, channel);

-- The operator's Ed25519 key for signing evidence: the 32-byte seed sealed under the
-- key-encryption key, and the public key that is published. One row per key; the newest
-- unretired key signs.
CREATE TABLE operator_signing_keys (
    key_id      TEXT    PRIMARY KEY,
    public_key  TEXT    NOT NULL,
    sealed_seed TEXT    NOT NULL,
    kek_id      TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    retired_at  INTEGER NOT NULL DEFAULT 0
);

-- A certificate's signature over its body, and the key that made it.
ALTER TABLE purge_certificates ADD COLUMN signature TEXT NOT NULL DEFAULT '';
ALTER TABLE purge_certificates ADD COLUMN signing_key_id TEXT NOT NULL DEFAULT '';
