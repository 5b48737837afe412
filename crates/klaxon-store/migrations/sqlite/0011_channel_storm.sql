-- Storm warning thresholds of a channel (response.md 1.6, RSP-200): a JSON list of strictly
-- increasing integers, empty = no storm warnings. On the wire they travel inside `group{}`
-- (ingest.md §1.5.1). Keep in step with ../postgres/0011_channel_storm.sql.
ALTER TABLE channels ADD COLUMN storm_thresholds TEXT NOT NULL DEFAULT '[]';
