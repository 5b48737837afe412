-- The incident list columns each member chose (response.md RSP-506). Keep in step with
-- ../postgres/0070_member_list_columns.sql.
--
-- One row per member who saved a choice; a member without a row sees the default columns.
-- `column_keys` is a JSON array of column keys (`duration`, `field.<name>`, `label.<name>`),
-- checked by the core's list_columns::validate before it is written.
CREATE TABLE member_list_columns (
    account_id  BIGINT NOT NULL,
    member_id   BIGINT NOT NULL,
    column_keys TEXT   NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (account_id, member_id)
);
