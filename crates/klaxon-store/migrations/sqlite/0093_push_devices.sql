-- App push (response.md RSP-285; docs/notifications.md "App push"): the devices a member
-- receives pushes on. Keep in step with ../postgres/0093_push_devices.sql.
--
-- Klaxon pushes through an ntfy server (the open-source push service with Android and iOS
-- apps): each device is one ntfy topic that Klaxon made up when the member added the
-- device, long and random so that nobody else can guess it and subscribe. The member
-- subscribes the ntfy app on their phone to it.
CREATE TABLE push_devices (
    device_id     INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id    BIGINT  NOT NULL,
    member_id     BIGINT  NOT NULL,
    name          TEXT    NOT NULL,
    topic         TEXT    NOT NULL UNIQUE,
    created_at    BIGINT  NOT NULL,
    last_sent_at  BIGINT  NOT NULL DEFAULT 0
);
CREATE INDEX push_devices_member ON push_devices (account_id, member_id);
