-- Flapping detection (ingest.md §2.15, ING-180…184; response.md RSP-203/RSP-204).
-- Keep in step with ../sqlite/0016_channel_flapping.sql.
--
-- A channel's flapping settings: the core FlappingConfig as JSON
-- ({mode, max_changes, in_mins, mute_mins}); '{}' reads as mode off with the defaults
-- 4 / 60 / 60. On the wire it is the channel's flapping{} object (ingest.md §1.5.2).
ALTER TABLE channels ADD COLUMN flapping TEXT NOT NULL DEFAULT '{}';
-- ING-180 counts a channel's recent incidents of one first alert key.
CREATE INDEX incidents_flapping ON incidents (account_id, channel_id, first_alert_key, created_at);
-- The `ever_muted` filter of /incident/list (RSP-503), kept by the store from the `response`
-- JSON on every write, like the search columns of 0015.
ALTER TABLE incidents ADD COLUMN ever_muted BIGINT NOT NULL DEFAULT 0;
UPDATE incidents SET ever_muted = 1 WHERE (response::jsonb ->> 'ever_muted') = 'true';
-- ING-262 explainability: whether the incident an event opened was flagged as flapping.
ALTER TABLE event_outcomes ADD COLUMN is_flapping BIGINT NOT NULL DEFAULT 0;
