-- Integration management (openapi-compat.md §2.6.1) and the source adapters (ingest.md §3):
-- each integration keeps its type-specific settings (ingest.md §1.3.1 `settings`, e.g.
-- `{"console_url": "https://n9e.example"}` for Nightingale and Zabbix) as JSON text.
ALTER TABLE integrations ADD COLUMN settings TEXT NOT NULL DEFAULT '{}';
