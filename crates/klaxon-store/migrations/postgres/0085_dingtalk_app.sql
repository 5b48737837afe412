-- The DingTalk app (response.md 1.21, RSP-302; docs/dingtalk-app.md). Keep in step with
-- ../sqlite/0085_dingtalk_app.sql.
--
-- A DingTalk app is its Client ID (AppKey, kept in `app_id`; it is also the robot code the
-- cards are sent with), Client Secret (`bot_token`), the event subscription's Signature Token
-- (`signing_secret`) and aes_key (`encrypt_key`), its AgentId (`agent_id`) and the
-- organisation's CorpId, kept here: callbacks may name the organisation as their receiver.
-- Cards are found again through their deliveries' message ids (the `outTrackId`s), so no
-- table is needed for them.
ALTER TABLE im_integrations ADD COLUMN corp_id TEXT NOT NULL DEFAULT '';
