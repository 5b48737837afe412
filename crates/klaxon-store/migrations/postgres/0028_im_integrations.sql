-- IM integrations (response.md 1.21) and their linked users, for the Slack app channel
-- (RSP-286, RSP-301, RSP-310, RSP-332). Keep in step with ../sqlite/0028_im_integrations.sql.
--
-- `im_integrations`: one per installed IM app. `integration_id` shares the id space of the
-- inbound `integrations` and `webhook_integrations` (the store checks all three when it picks
-- one). `bot_token` and `signing_secret` are kept in clear because every API call and every
-- callback check needs them; the API never shows them in full.
CREATE TABLE im_integrations (
    integration_id   BIGINT  PRIMARY KEY,
    account_id       BIGINT  NOT NULL,
    kind             TEXT    NOT NULL,
    name             TEXT    NOT NULL,
    bot_token        TEXT    NOT NULL,
    signing_secret   TEXT    NOT NULL,
    war_room_enabled BIGINT  NOT NULL DEFAULT 0,
    status           TEXT    NOT NULL,
    creator_id       BIGINT  NOT NULL DEFAULT 0,
    created_at       BIGINT  NOT NULL,
    updated_at       BIGINT  NOT NULL
);
CREATE INDEX im_integrations_account ON im_integrations (account_id, kind);

-- `im_links`: a member's identity on the platform of one integration. One IM user per member
-- and one member per IM user, per integration: a button press must name exactly one member.
CREATE TABLE im_links (
    integration_id   BIGINT  NOT NULL,
    account_id       BIGINT  NOT NULL,
    member_id        BIGINT  NOT NULL,
    im_user_id       TEXT    NOT NULL,
    created_at       BIGINT  NOT NULL,
    PRIMARY KEY (integration_id, im_user_id)
);
CREATE UNIQUE INDEX im_links_member ON im_links (integration_id, member_id);
CREATE INDEX im_links_account_member ON im_links (account_id, member_id);
