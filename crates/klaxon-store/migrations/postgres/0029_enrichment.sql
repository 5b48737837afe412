-- Label enrichment and mapping tables (ingest.md §2.5, §2.6; docs/enrichment.md).
-- Keep in step with ../sqlite/0029_enrichment.sql.

-- One row per alert integration (dedicated or shared) that has rules: the ordered rule list as
-- JSON (klaxon_core::enrichment::EnrichmentRule). An upsert replaces the whole list.
CREATE TABLE enrichment_rules (
    integration_id BIGINT NOT NULL PRIMARY KEY,
    account_id     BIGINT NOT NULL,
    rules          TEXT   NOT NULL DEFAULT '[]',
    updated_by     BIGINT NOT NULL DEFAULT 0,
    updated_at     BIGINT NOT NULL
);
CREATE INDEX enrichment_rules_account ON enrichment_rules (account_id, integration_id);

-- Mapping schemas (§1.3.7): ordered source and result label keys as JSON lists.
CREATE TABLE mapping_schemas (
    schema_id         TEXT   NOT NULL PRIMARY KEY,
    account_id        BIGINT NOT NULL,
    name              TEXT   NOT NULL,
    description       TEXT   NOT NULL DEFAULT '',
    team_id           BIGINT NOT NULL DEFAULT 0,
    source_label_keys TEXT   NOT NULL,
    result_label_keys TEXT   NOT NULL,
    creator_id        BIGINT NOT NULL DEFAULT 0,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);
CREATE INDEX mapping_schemas_account ON mapping_schemas (account_id, created_at);

-- The rows of a schema (ING-070, ING-071; at most 100 000 each). `row_hash` is the hex
-- SHA-256 of the source values as a JSON array: a fixed-size key however long the values are
-- (an index entry on the values themselves could exceed PostgreSQL's b-tree row limit). The
-- values are kept as JSON lists in key order.
CREATE TABLE mapping_rows (
    schema_id     TEXT   NOT NULL,
    row_hash      TEXT   NOT NULL,
    account_id    BIGINT NOT NULL,
    source_values TEXT   NOT NULL,
    result_values TEXT   NOT NULL,
    PRIMARY KEY (schema_id, row_hash)
);

-- ING-262 detail flags of enrichment (ING-062, ING-065).
ALTER TABLE event_outcomes ADD COLUMN labels_truncated BIGINT NOT NULL DEFAULT 0;
ALTER TABLE event_outcomes ADD COLUMN enrich_error BIGINT NOT NULL DEFAULT 0;
