-- Custom feature-permission roles and private channels (response.md §1.5, §1.6, §2.29,
-- RSP-520 … RSP-529). Keep in step with ../postgres/0017_roles_and_private_channels.sql.
--
-- A member's roles stay in members.role_ids (0001). The built-in roles 2 Admin, 6 Responder
-- and 8 Viewer are code, not rows (they cannot be edited, RSP-524); this table holds the
-- custom ones. `permissions` is a JSON array of point keys (`["incidents_manage", …]`).
CREATE TABLE roles (
    -- AUTOINCREMENT, started above the built-in ids: a custom role never takes a built-in id,
    -- and a deleted role's id is never handed out again (so a stale grant cannot turn into a
    -- different, newer role).
    role_id     INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id  BIGINT  NOT NULL REFERENCES accounts (account_id),
    role_name   TEXT    NOT NULL,
    description TEXT    NOT NULL DEFAULT '',
    permissions TEXT    NOT NULL DEFAULT '[]',
    status      TEXT    NOT NULL DEFAULT 'enabled',
    creator_id  BIGINT  NOT NULL DEFAULT 0,
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL
);
CREATE UNIQUE INDEX roles_account_name ON roles (account_id, LOWER(role_name));
INSERT INTO sqlite_sequence (name, seq) VALUES ('roles', 100);

-- RSP-526: incidents of a private channel are listed only for its people. OQ-47: up to 3
-- managing teams in addition to team_id, as a JSON array of ids.
ALTER TABLE channels ADD COLUMN is_private BIGINT NOT NULL DEFAULT 0;
ALTER TABLE channels ADD COLUMN managing_team_ids TEXT NOT NULL DEFAULT '[]';

-- The first-start owner holds Admin (RSP-523); members without a role act as Responders
-- (RSP-522), which is what an empty role_ids already means.
UPDATE members SET role_ids = '[2]' WHERE is_owner = 1 AND role_ids = '[]';
