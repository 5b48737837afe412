-- The Feishu/Lark app (response.md RSP-286, RSP-302, RSP-310; docs/feishu.md). Keep in step
-- with ../postgres/0047_feishu_app.sql.
--
-- A Feishu app is identified by its App ID as well as its secret (the tenant access token is
-- requested with both), may encrypt its callbacks with an Encrypt Key, and lives on one of
-- two open platforms (Feishu in China, Lark elsewhere): the columns are empty for Slack.
-- The App Secret is kept in `bot_token` and the Verification Token in `signing_secret`,
-- the columns that already mean "what API calls use" and "what proves a callback".
ALTER TABLE im_integrations ADD COLUMN app_id TEXT NOT NULL DEFAULT '';
ALTER TABLE im_integrations ADD COLUMN encrypt_key TEXT NOT NULL DEFAULT '';
ALTER TABLE im_integrations ADD COLUMN api_base TEXT NOT NULL DEFAULT '';
