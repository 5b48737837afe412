-- War rooms (response.md 1.22, RSP-430…438; docs/war-rooms.md).
-- Keep in step with ../sqlite/0084_war_rooms.sql.
--
-- `war_rooms`: one group chat per incident on the account's war-room IM integration. A
-- dissolved room stays as a record; at most one room of an incident is `active` (RSP-437
-- allows a new one after a dissolve). `card_ref` is the platform's reference to the
-- incident card posted in the chat (Slack `<channel>/<ts>`, a Feishu message id), which
-- state sync refreshes and which tells a war-room card press from a direct-message one.
CREATE TABLE war_rooms (
    room_id          TEXT    PRIMARY KEY,
    account_id       BIGINT  NOT NULL,
    incident_id      TEXT    NOT NULL,
    integration_id   BIGINT  NOT NULL,
    plugin_type      TEXT    NOT NULL,
    chat_id          TEXT    NOT NULL,
    chat_name        TEXT    NOT NULL,
    share_link       TEXT    NOT NULL,
    card_ref         TEXT    NOT NULL DEFAULT '',
    status           TEXT    NOT NULL,
    created_by       BIGINT  NOT NULL,
    created_at       BIGINT  NOT NULL,
    dissolved_at     BIGINT  NOT NULL DEFAULT 0
);
CREATE INDEX war_rooms_incident ON war_rooms (account_id, incident_id);
CREATE INDEX war_rooms_chat ON war_rooms (integration_id, chat_id);

-- `war_room_members`: the members a room has invited or decided to invite (RSP-433 invites
-- each responder once; nobody is removed). `im_user_id` is '' until the invitation resolved
-- the member on the platform.
CREATE TABLE war_room_members (
    room_id          TEXT    NOT NULL,
    account_id       BIGINT  NOT NULL,
    member_id        BIGINT  NOT NULL,
    im_user_id       TEXT    NOT NULL,
    created_at       BIGINT  NOT NULL,
    PRIMARY KEY (room_id, member_id)
);

-- `war_room_observers`: members invited to every war room of the account.
CREATE TABLE war_room_observers (
    account_id       BIGINT  NOT NULL,
    member_id        BIGINT  NOT NULL,
    created_at       BIGINT  NOT NULL,
    PRIMARY KEY (account_id, member_id)
);
