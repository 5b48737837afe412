-- Custom actions and links (response.md 1.19, 1.20, §2.24 RSP-400…404). Keep in step with
-- ../sqlite/0045_custom_actions_and_links.sql.
--
-- One table for both kinds: they are outbound integrations bound to channels, they share the
-- integration id space (the store checks every integration table when it draws an id), and
-- the per-channel limit of 3 is counted per kind.
-- `kind`: custom_action | link. A custom action uses endpoint, headers, custom_body and
-- value_mapping (the outbound webhook's sending settings, RSP-376/377); a link uses
-- url_template and open_mode (popup | new_tab). `channel_ids` is a JSON list.
CREATE TABLE custom_integrations (
    integration_id   BIGINT  PRIMARY KEY,
    account_id       BIGINT  NOT NULL,
    kind             TEXT    NOT NULL,
    name             TEXT    NOT NULL,
    endpoint         TEXT    NOT NULL DEFAULT '',
    headers          TEXT    NOT NULL DEFAULT '{}',
    custom_body      TEXT    NOT NULL DEFAULT '',
    value_mapping    TEXT    NOT NULL DEFAULT '{}',
    url_template     TEXT    NOT NULL DEFAULT '',
    open_mode        TEXT    NOT NULL DEFAULT '',
    channel_ids      TEXT    NOT NULL DEFAULT '[]',
    team_id          BIGINT  NOT NULL DEFAULT 0,
    status           TEXT    NOT NULL,
    creator_id       BIGINT  NOT NULL DEFAULT 0,
    updated_by       BIGINT  NOT NULL DEFAULT 0,
    created_at       BIGINT  NOT NULL,
    updated_at       BIGINT  NOT NULL
);
CREATE INDEX custom_integrations_account ON custom_integrations (account_id, kind);
