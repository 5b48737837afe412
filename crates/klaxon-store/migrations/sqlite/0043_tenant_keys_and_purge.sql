-- Per-tenant data keys and purge certificates (service-agreement.md SVC-185, SVC-190,
-- SVC-191; docs/backup.md). Both are operator records (SVC-180): a purge keeps them.
-- Keep in step with ../postgres/0043_tenant_keys_and_purge.sql.

-- One data key per tenant (SaaS mode): 256 random bits, stored only wrapped under the
-- deployment's key-encryption key (hex of nonce || AES-256-GCM ciphertext and tag).
-- Destroying the key (the crypto-shred step of a purge) empties `wrapped_key` and sets
-- `destroyed_at`; the row stays as evidence of which key existed and when it was destroyed.
CREATE TABLE tenant_keys (
    account_id   INTEGER PRIMARY KEY,
    key_id       TEXT    NOT NULL,
    kek_id       TEXT    NOT NULL,
    wrapped_key  TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    destroyed_at INTEGER NOT NULL DEFAULT 0
);

-- The certificate of each purge: the JSON document as issued and its SHA-256.
CREATE TABLE purge_certificates (
    certificate_id TEXT    PRIMARY KEY,
    account_id     INTEGER NOT NULL,
    issued_at      INTEGER NOT NULL,
    body           TEXT    NOT NULL,
    sha256         TEXT    NOT NULL
);
CREATE INDEX purge_certificates_account ON purge_certificates (account_id, issued_at);
