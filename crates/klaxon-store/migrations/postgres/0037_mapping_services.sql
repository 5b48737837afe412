-- Label mapping services (ingest.md ING-072…075; docs/enrichment.md): the external services
-- that map rules with source = api call. Keep in step with ../sqlite/0037_mapping_services.sql.
--
-- headers: the custom request headers as a JSON object (often a credential: redacted from the
-- full export). enabled: 0 = status disabled (rules naming it call nothing).
CREATE TABLE mapping_services (
    service_id           TEXT   NOT NULL PRIMARY KEY,
    account_id           BIGINT NOT NULL,
    name                 TEXT   NOT NULL,
    description          TEXT   NOT NULL DEFAULT '',
    team_id              BIGINT NOT NULL DEFAULT 0,
    url                  TEXT   NOT NULL,
    headers              TEXT   NOT NULL DEFAULT '{}',
    timeout              BIGINT NOT NULL,
    retry_count          BIGINT NOT NULL,
    insecure_skip_verify BIGINT NOT NULL DEFAULT 0,
    enabled              BIGINT NOT NULL DEFAULT 1,
    creator_id           BIGINT NOT NULL DEFAULT 0,
    created_at           BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL
);
CREATE INDEX mapping_services_account ON mapping_services (account_id, created_at);
