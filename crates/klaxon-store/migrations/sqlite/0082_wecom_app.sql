-- The WeCom app (response.md RSP-302, RSP-311, RSP-313; docs/wecom.md). Keep in step with
-- ../postgres/0082_wecom_app.sql.
--
-- A WeCom app is the corp ID (kept in `app_id`), the app's Secret (`bot_token`), the
-- callback's Token (`signing_secret`) and EncodingAESKey (`encrypt_key`), and the app's
-- AgentId: every message and card update names the agent that sends it.
ALTER TABLE im_integrations ADD COLUMN agent_id TEXT NOT NULL DEFAULT '';

-- `im_card_codes`: one row per WeCom card sent (`task_id`). WeCom lets a card be updated
-- only with a response code, each usable once within 72 hours: the send answers one, and
-- every button press on the card brings a new one (RSP-313). `response_code` is the unused
-- code, '' once spent; `code_at` is when WeCom issued it.
CREATE TABLE im_card_codes (
    integration_id   BIGINT  NOT NULL,
    task_id          TEXT    NOT NULL,
    account_id       BIGINT  NOT NULL,
    incident_id      TEXT    NOT NULL,
    im_user_id       TEXT    NOT NULL,
    response_code    TEXT    NOT NULL,
    code_at          BIGINT  NOT NULL,
    created_at       BIGINT  NOT NULL,
    PRIMARY KEY (integration_id, task_id)
);
CREATE INDEX im_card_codes_incident ON im_card_codes (account_id, incident_id);
