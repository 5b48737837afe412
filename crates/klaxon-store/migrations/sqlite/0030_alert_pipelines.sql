-- The alert pipeline of each alert integration (ingest.md §2.7, §1.5.4; docs/pipeline.md).
-- Keep in step with ../postgres/0030_alert_pipelines.sql. One row per integration that has
-- ever saved a pipeline; a save replaces the whole ordered list (the Open API upsert has no
-- version). `rules` is the JSON of klaxon_core::pipeline::PipelineAction[].
CREATE TABLE alert_pipelines (
    account_id     BIGINT NOT NULL,
    integration_id BIGINT NOT NULL,
    rules          TEXT   NOT NULL DEFAULT '[]',
    creator_id     BIGINT NOT NULL DEFAULT 0,
    updated_by     BIGINT NOT NULL DEFAULT 0,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    PRIMARY KEY (account_id, integration_id)
);
-- ING-085: the integration-level inhibit reads the active alerts of an integration created
-- in the last 24 h, once per batch. integration_id leads for the `IN (…)` list (see
-- alerts_candidate in 0001).
CREATE INDEX alerts_pipeline_inhibit ON alerts (integration_id, account_id, created_at)
    WHERE closed = 0 AND alert_status <> 'Ok';
