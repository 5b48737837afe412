-- Intelligent (similarity) grouping, ingest.md ING-157: an incident opened under it keeps its
-- first alert's compared text (the `similarity_keys` values joined with spaces) as the
-- reference later alerts are compared with. Set at creation and never changed; '' for
-- incidents grouped by rules or not grouped.
ALTER TABLE incidents ADD COLUMN group_text TEXT NOT NULL DEFAULT '';
