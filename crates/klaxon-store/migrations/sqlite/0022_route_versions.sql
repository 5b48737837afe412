-- Routing of shared alert integrations (ingest.md §1.3.2, §2.8, ING-095; docs/routing.md).
-- Keep in step with ../postgres/0022_route_versions.sql. One row per saved version of an
-- integration's route configuration, never rewritten: a save or a rollback inserts the next
-- version, and the primary key makes two saves based on the same version collide (the
-- optimistic lock of ING-095). `rules`, `default_channel_ids` and `sections` are JSON text
-- (klaxon_core::routing). Every version is kept (ING-095 asks for at least 100).
CREATE TABLE route_versions (
    integration_id      BIGINT NOT NULL,
    version             BIGINT NOT NULL,
    account_id          BIGINT NOT NULL,
    rules               TEXT   NOT NULL DEFAULT '[]',
    default_channel_ids TEXT   NOT NULL DEFAULT '[]',
    sections            TEXT   NOT NULL DEFAULT '[]',
    -- The version a rollback copied; 0 for an ordinary save.
    rolled_back_from    BIGINT NOT NULL DEFAULT 0,
    updated_by          BIGINT NOT NULL DEFAULT 0,
    updated_at          BIGINT NOT NULL,
    PRIMARY KEY (integration_id, version)
);
CREATE INDEX route_versions_account ON route_versions (account_id, integration_id, version);
