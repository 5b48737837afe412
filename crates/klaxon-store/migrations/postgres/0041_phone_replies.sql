-- Acting from an SMS: the reply codes handed out with incident SMS (docs/notifications.md,
-- "Acting from a call or an SMS"). Keep in step with ../sqlite/0041_phone_replies.sql.
--
-- One row per SMS notification sent to a phone. The code is short enough to type (four
-- digits) and is unique among the live codes of one phone number, whatever the account, so
-- a reply (which names only its sender and its text) identifies exactly one incident and one
-- member. A code lives until `expires_at`; a later SMS to the same phone may then take it
-- over (the insert replaces an expired row and never a live one). `rid` is the outbox row
-- the code was made for, so a retried send reuses its code.
CREATE TABLE sms_reply_codes (
    phone        TEXT    NOT NULL,
    code         TEXT    NOT NULL,
    account_id   BIGINT  NOT NULL,
    incident_id  TEXT    NOT NULL,
    member_id    BIGINT  NOT NULL,
    rid          TEXT    NOT NULL,
    created_at   BIGINT  NOT NULL,
    expires_at   BIGINT  NOT NULL,
    PRIMARY KEY (phone, code)
);
CREATE UNIQUE INDEX sms_reply_codes_rid ON sms_reply_codes (rid);
CREATE INDEX sms_reply_codes_account ON sms_reply_codes (account_id, incident_id);
