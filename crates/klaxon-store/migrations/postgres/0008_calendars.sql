-- Service calendars (response.md §1.14, §2.18) and the holiday sets they link.
-- Keep in step with ../sqlite/0008_calendars.sql (same tables, columns and indexes).

-- One row per calendar, the core `ServiceCalendar` as JSON in `definition` (workdays,
-- linked holiday sets, per-date marks). `cal_id` is an ObjectID. `cal_name` and `team_id`
-- are columns of their own for the list filters. Deletion is final (RSP-273): the row goes.
CREATE TABLE calendars (
    cal_id     TEXT    PRIMARY KEY,
    account_id BIGINT  NOT NULL REFERENCES accounts (account_id),
    cal_name   TEXT    NOT NULL,
    team_id    BIGINT  NOT NULL DEFAULT 0,
    definition TEXT    NOT NULL,
    created_at BIGINT  NOT NULL,
    updated_at BIGINT  NOT NULL
);
CREATE INDEX calendars_account ON calendars (account_id, cal_id);

-- Holiday sets are reference data an administrator loads from a file (OQ-18); none is built
-- in. `entries` is the JSON map YYYY-MM-DD -> holiday|workday. Loading a set with an id that
-- exists replaces it.
CREATE TABLE holiday_sets (
    account_id BIGINT  NOT NULL REFERENCES accounts (account_id),
    set_id     TEXT    NOT NULL,
    set_name   TEXT    NOT NULL,
    entries    TEXT    NOT NULL,
    updated_at BIGINT  NOT NULL,
    PRIMARY KEY (account_id, set_id)
);

-- feature: iCalendar feed, per member: the secret token of the URL
-- (`/calendar/member/<token>.ics`) listing one member's shifts across every schedule.
CREATE TABLE member_feeds (
    account_id BIGINT  NOT NULL REFERENCES accounts (account_id),
    member_id  BIGINT  NOT NULL,
    feed_token TEXT    NOT NULL,
    PRIMARY KEY (account_id, member_id)
);
CREATE UNIQUE INDEX member_feeds_token ON member_feeds (feed_token);

-- The management team of a schedule as a column of its own, for the `team_ids` filter of
-- `/schedule/list` (openapi-compat.md 2.8); the definition JSON stays authoritative.
ALTER TABLE schedules ADD COLUMN team_id BIGINT NOT NULL DEFAULT 0;
UPDATE schedules SET team_id = COALESCE((definition::json ->> 'team_id')::bigint, 0);
CREATE INDEX schedules_team ON schedules (account_id, team_id);
