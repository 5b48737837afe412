-- Personal notification preferences (response.md 1.15, RSP-330…RSP-332). Keep in step with
-- ../postgres/0033_member_preferences.sql.
--
-- One row per member who has saved a preference; a member without a row has the defaults of
-- OQ-24. `preference` is the JSON object {critical, warning, info} of the core's
-- NotificationPreference, validated before it is written.
CREATE TABLE member_preferences (
    account_id  BIGINT NOT NULL,
    member_id   BIGINT NOT NULL,
    preference  TEXT   NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (account_id, member_id)
);
