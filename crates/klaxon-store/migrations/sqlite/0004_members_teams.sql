-- Members and teams (response.md §1.3, §1.4, §2.30; openapi-compat.md 2.9, 2.10).
-- Keep in step with ../postgres/0004_members_teams.sql (same tables, columns and indexes).

-- Teams. AUTOINCREMENT: a deleted team's id is never handed out again, so a stale reference
-- (an escalation level, a channel) can never point at a different, newer team.
CREATE TABLE teams (
    team_id     INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id  BIGINT  NOT NULL REFERENCES accounts (account_id),
    team_name   TEXT    NOT NULL,
    description TEXT    NOT NULL DEFAULT '',
    creator_id  BIGINT  NOT NULL DEFAULT 0,
    updated_by  BIGINT  NOT NULL DEFAULT 0,
    ref_id      TEXT    NOT NULL DEFAULT '',
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL
);
CREATE UNIQUE INDEX teams_account_name ON teams (account_id, team_name);
CREATE INDEX teams_account_ref ON teams (account_id, ref_id);

-- Team membership; deleting a team deletes its rows (the store also deletes them explicitly).
CREATE TABLE team_members (
    account_id BIGINT NOT NULL,
    team_id    BIGINT NOT NULL REFERENCES teams (team_id) ON DELETE CASCADE,
    member_id  BIGINT NOT NULL,
    PRIMARY KEY (team_id, member_id)
);
CREATE INDEX team_members_member ON team_members (account_id, member_id);

-- Member fields of response.md §1.3 that 0001 did not have. `phone` is E.164 ('' = none);
-- `country_code` is the region the phone was given with ('' when given in E.164 form);
-- `activated_at` is set at first login (0 = never, i.e. `pending`).
ALTER TABLE members ADD COLUMN phone TEXT NOT NULL DEFAULT '';
ALTER TABLE members ADD COLUMN country_code TEXT NOT NULL DEFAULT '';
ALTER TABLE members ADD COLUMN ref_id TEXT NOT NULL DEFAULT '';
ALTER TABLE members ADD COLUMN email_verified BIGINT NOT NULL DEFAULT 0;
ALTER TABLE members ADD COLUMN phone_verified BIGINT NOT NULL DEFAULT 0;
ALTER TABLE members ADD COLUMN activated_at BIGINT NOT NULL DEFAULT 0;

-- RSP-552: email unique per account case-insensitively, phone unique per account. Empty
-- values (phone-invited members have no email) and deleted members (their address may be
-- invited again) do not take part. Replaces 0001's case-sensitive (account_id, email) index.
DROP INDEX members_account_email;
CREATE UNIQUE INDEX members_account_email ON members (account_id, LOWER(email))
    WHERE email <> '' AND status <> 'deleted';
CREATE UNIQUE INDEX members_account_phone ON members (account_id, phone)
    WHERE phone <> '' AND status <> 'deleted';
CREATE INDEX members_account_ref ON members (account_id, ref_id);

-- Members created before this migration: the enabled ones have logged in, and the owner's
-- address is the one the operator configured at the first start, so it counts as verified.
UPDATE members SET activated_at = created_at WHERE status = 'enabled';
UPDATE members SET email_verified = 1 WHERE is_owner = 1;
