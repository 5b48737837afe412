-- ServiceDesk Plus cloud (response.md RSP-407): the OAuth tokens Zoho accounts issued for an
-- integration when its one-time code was exchanged. The access token expires (about an hour);
-- the refresh token gets a new one. Both are credentials, left out of exports. The client
-- secret stays in ticket_sync_integrations.secret with the other systems' secrets. Keep in
-- step with ../postgres/0072_ticket_sync_oauth.sql.
CREATE TABLE ticket_sync_tokens (
    integration_id   BIGINT  PRIMARY KEY,
    account_id       BIGINT  NOT NULL,
    access_token     TEXT    NOT NULL DEFAULT '',
    refresh_token    TEXT    NOT NULL DEFAULT '',
    expires_at       BIGINT  NOT NULL DEFAULT 0,
    updated_at       BIGINT  NOT NULL
);
CREATE INDEX ticket_sync_tokens_account ON ticket_sync_tokens (account_id);
