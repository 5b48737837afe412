-- The Microsoft Teams app (response.md RSP-300, RSP-301, RSP-302, RSP-317; docs/teams.md).
-- Keep in step with ../sqlite/0083_teams_app.sql.
--
-- A Teams bot is its Microsoft App ID (`app_id`) and client secret (`bot_token`); a
-- single-tenant bot also names its Microsoft Entra tenant, which issues its tokens.
ALTER TABLE im_integrations ADD COLUMN tenant_id TEXT NOT NULL DEFAULT '';

-- `im_conversations`: where a Teams bot may post. Teams lets a bot post only into
-- conversations it was told about: a team linked with `linkTeam` (its General channel), a
-- group chat linked with `linkChat`, and the personal chat of a user who linked themselves
-- with `linkUser` (`kind` team | chat | personal; `im_user_id` is that user). Every
-- conversation is reached through the Bot Connector's `service_url` it came from.
CREATE TABLE im_conversations (
    integration_id   BIGINT  NOT NULL,
    conversation_id  TEXT    NOT NULL,
    account_id       BIGINT  NOT NULL,
    kind             TEXT    NOT NULL,
    im_user_id       TEXT    NOT NULL,
    name             TEXT    NOT NULL,
    service_url      TEXT    NOT NULL,
    created_at       BIGINT  NOT NULL,
    PRIMARY KEY (integration_id, conversation_id)
);
CREATE INDEX im_conversations_user ON im_conversations (integration_id, im_user_id);

-- `im_link_codes`: the one-time codes a member sends as `linkUser {code}` to link their
-- Teams user to themselves. Only a hash is kept; a code works once, before `expires_at`.
CREATE TABLE im_link_codes (
    code_hash        TEXT    PRIMARY KEY,
    integration_id   BIGINT  NOT NULL,
    account_id       BIGINT  NOT NULL,
    member_id        BIGINT  NOT NULL,
    expires_at       BIGINT  NOT NULL,
    created_at       BIGINT  NOT NULL
);
