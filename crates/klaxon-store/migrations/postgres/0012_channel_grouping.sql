-- Grouping policy of a channel (ingest.md §1.3.6 GroupingConfig, ING-150…159): the core
-- GroupingConfig as JSON; '{}' = grouping disabled (ING-150). On the wire it is the
-- channel's group{} object (ingest.md §1.5.1). Keep in step with ../sqlite/0012_channel_grouping.sql.
ALTER TABLE channels ADD COLUMN grouping TEXT NOT NULL DEFAULT '{}';
-- Eligible incidents of rule-based grouping (ING-151) are found by channel and group key.
CREATE INDEX incidents_group_key ON incidents (account_id, channel_id, group_key);
