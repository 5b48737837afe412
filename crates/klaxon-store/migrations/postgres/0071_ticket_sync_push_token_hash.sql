-- Credentials sealed at rest (service-agreement.md SVC-185; response.md 1.23 "credentials
-- (encrypted)"; docs/security.md). When a key-encryption key is configured, the ServiceNow
-- push token in ticket_sync_integrations.push_token is sealed under the tenant's data key, so
-- the push URL can no longer be found by comparing tokens: it is found by the SHA-256 of its
-- token instead. Rows written before this migration are hashed at start (the store's migrate
-- step); until then the lookup still compares the clear token. Keep in step with
-- ../sqlite/0071_ticket_sync_push_token_hash.sql.
ALTER TABLE ticket_sync_integrations ADD COLUMN push_token_hash TEXT NOT NULL DEFAULT '';
DROP INDEX ticket_sync_integrations_push;
CREATE INDEX ticket_sync_integrations_push ON ticket_sync_integrations (push_token_hash);
