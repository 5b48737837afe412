-- Group chats an IM app can no longer post to (RSP-300): Feishu reports a disbanded chat with
-- the `im.chat.disbanded_v1` event, and later sends to it fail with `chat_unavailable`
-- without calling the platform. Keep in step with ../sqlite/0048_im_unavailable_chats.sql.
CREATE TABLE im_unavailable_chats (
    integration_id   BIGINT  NOT NULL,
    account_id       BIGINT  NOT NULL,
    chat_id          TEXT    NOT NULL,
    reason           TEXT    NOT NULL,
    created_at       BIGINT  NOT NULL,
    PRIMARY KEY (integration_id, chat_id)
);
CREATE INDEX im_unavailable_chats_account ON im_unavailable_chats (account_id);
