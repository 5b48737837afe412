-- Full exports of a tenant's data (service-agreement.md SVC-182; docs/data-export.md). The
-- archive is kept in the tenant's own database (so in its region) until the download link
-- expires after 7 days; then the archive and token are cleared and the row stays as history.
-- `token_hash` is the SHA-256 of the download token, which is shown once.
CREATE TABLE account_exports (
    export_id    BIGINT NOT NULL PRIMARY KEY,
    account_id   BIGINT NOT NULL,
    requested_by BIGINT NOT NULL,
    status       TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    finished_at  BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    size_bytes   BIGINT NOT NULL,
    sha256       TEXT NOT NULL,
    error        TEXT NOT NULL,
    token_hash   TEXT NOT NULL,
    archive      BYTEA
);
CREATE INDEX account_exports_by_account ON account_exports (account_id, created_at);
CREATE INDEX account_exports_by_token ON account_exports (token_hash);
