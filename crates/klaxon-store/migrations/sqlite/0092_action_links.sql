-- One-click action links in direct notifications (docs/notifications.md, "Acting from an
-- e-mail or a push"). Keep in step with ../postgres/0092_action_links.sql.
--
-- One row per link handed out: an e-mail or an app push to one member about one incident.
-- Only the SHA-256 of the link's random token is kept, so the table cannot be used to act;
-- the link itself is the credential, acting as the member it was sent to until
-- `expires_at`. A retried send makes a new link (the old one keeps working until it
-- expires). Expired rows are removed by the retention sweep.
CREATE TABLE action_links (
    token_hash   TEXT    PRIMARY KEY,
    account_id   BIGINT  NOT NULL,
    incident_id  TEXT    NOT NULL,
    member_id    BIGINT  NOT NULL,
    rid          TEXT    NOT NULL,
    channel      TEXT    NOT NULL,
    created_at   BIGINT  NOT NULL,
    expires_at   BIGINT  NOT NULL
);
CREATE INDEX action_links_expiry ON action_links (expires_at);
CREATE INDEX action_links_account ON action_links (account_id);
