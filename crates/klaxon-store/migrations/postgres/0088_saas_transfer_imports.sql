-- SaaS mode: the second half of a staff-assisted move between regions (service-agreement.md
-- SVC-212, SVC-215; docs/saas.md "Cross-region transfers"). Keep in step with
-- ../sqlite/0088_saas_transfer_imports.sql.

-- At the source: when the destination reported the import done, who said so, and the
-- tenant's new account id there. The source tenant is purged right after (SVC-215).
ALTER TABLE saas_transfers ADD COLUMN completed_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE saas_transfers ADD COLUMN completed_by TEXT NOT NULL DEFAULT '';
ALTER TABLE saas_transfers ADD COLUMN destination_account_id BIGINT NOT NULL DEFAULT 0;

-- At the destination: each package imported as a new tenant, with where it came from. A
-- package (by its SHA-256) and a source transfer are imported at most once.
CREATE TABLE saas_transfer_imports (
    import_id           BIGSERIAL PRIMARY KEY,
    account_id          BIGINT  NOT NULL,
    source_region       TEXT    NOT NULL,
    source_account_id   BIGINT  NOT NULL,
    source_transfer_id  BIGINT  NOT NULL,
    package_sha256      TEXT    NOT NULL,
    exported_at         BIGINT  NOT NULL,
    rows_imported       BIGINT  NOT NULL,
    actor               TEXT    NOT NULL,
    imported_at         BIGINT  NOT NULL
);
CREATE UNIQUE INDEX saas_transfer_imports_package ON saas_transfer_imports (package_sha256);
CREATE UNIQUE INDEX saas_transfer_imports_source ON saas_transfer_imports (source_region, source_transfer_id);
CREATE INDEX saas_transfer_imports_account ON saas_transfer_imports (account_id);
