-- Search columns for /incident/list (response.md RSP-503), kept by the store from the
-- `response` JSON on every write so the filters need no JSON functions:
--   responder_ids / acker_ids: ",<id>,<id>," (each id wrapped in commas);
--   field_values: "|<name>=<value>|…" for select and checkbox fields (one entry per chosen
--   option), text fields left out (RSP-086);
--   title_sig / title_tokens: the title's token-set signature and size, for the similarity
--   candidates of outlier detection (RSP-450, RSP-452).
-- Keep in step with ../sqlite/0015_incident_search.sql.
ALTER TABLE incidents ADD COLUMN responder_ids TEXT NOT NULL DEFAULT '';
ALTER TABLE incidents ADD COLUMN acker_ids TEXT NOT NULL DEFAULT '';
ALTER TABLE incidents ADD COLUMN field_values TEXT NOT NULL DEFAULT '';
ALTER TABLE incidents ADD COLUMN title_sig TEXT NOT NULL DEFAULT '';
ALTER TABLE incidents ADD COLUMN title_tokens BIGINT NOT NULL DEFAULT 0;
CREATE INDEX incidents_similar ON incidents (account_id, channel_id, title_sig, start_time);
CREATE INDEX incidents_similar_size ON incidents (account_id, channel_id, title_tokens, start_time);
