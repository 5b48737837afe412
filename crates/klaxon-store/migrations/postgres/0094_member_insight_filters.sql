-- The insights filter each member chose last (response.md RSP-470: "each user's last filter
-- choice is stored for that user only"). Keep in step with
-- ../sqlite/0094_member_insight_filters.sql.
--
-- One row per member who filtered the console's Insights page; a member without a row sees
-- this week with no filters. `choice` is a JSON object (range, from, to, team_ids,
-- channel_ids, severities), checked by the console before it is written.
CREATE TABLE member_insight_filters (
    account_id  BIGINT NOT NULL,
    member_id   BIGINT NOT NULL,
    choice      TEXT   NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (account_id, member_id)
);
