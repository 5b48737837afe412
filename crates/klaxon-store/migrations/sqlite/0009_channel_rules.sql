-- Channel noise rules (ingest.md §2.9, §2.11, §2.12), alert marks (§1.3.4) and event
-- outcomes (ING-262). Keep in step with ../postgres/0009_channel_rules.sql.

-- One row per drop, silence or inhibit rule; `definition` is klaxon_core::noise::NoiseRule as
-- JSON. `kind` is drop | silence | inhibit. Rules are read per channel, once per inbox batch.
-- `expires_at` (epoch ms) is set only for quick-silence rules (ING-134): from then on the rule
-- is gone (hidden from reads, deleted by the next inbox batch); 0 = never.
CREATE TABLE channel_rules (
    rule_id    TEXT    PRIMARY KEY,
    account_id BIGINT  NOT NULL REFERENCES accounts (account_id),
    channel_id BIGINT  NOT NULL,
    kind       TEXT    NOT NULL,
    rule_name  TEXT    NOT NULL,
    priority   BIGINT  NOT NULL,
    status     TEXT    NOT NULL,
    definition TEXT    NOT NULL,
    expires_at BIGINT  NOT NULL DEFAULT 0,
    created_at BIGINT  NOT NULL,
    updated_at BIGINT  NOT NULL
);
CREATE INDEX channel_rules_channel ON channel_rules (account_id, channel_id, kind);
CREATE INDEX channel_rules_expiry ON channel_rules (expires_at) WHERE expires_at > 0;

-- ING-123, ING-130, ING-140: an alert kept with a silence or inhibit mark.
ALTER TABLE alerts ADD COLUMN mark TEXT NOT NULL DEFAULT 'none';
ALTER TABLE alerts ADD COLUMN mark_rule_id TEXT NOT NULL DEFAULT '';

-- Inhibit sources (ING-140): the Triggered incidents of a channel created in the last 24 h.
CREATE INDEX incidents_channel_created ON incidents (account_id, channel_id, created_at);

-- ING-262: one outcome per event and target channel, whatever happened to it. `rule_id` is
-- the drop/silence/inhibit rule that decided; `source_incident_id` the inhibiting incident.
CREATE TABLE event_outcomes (
    outcome_id         TEXT    PRIMARY KEY,
    account_id         BIGINT  NOT NULL,
    channel_id         BIGINT  NOT NULL,
    integration_id     BIGINT  NOT NULL,
    integration_type   TEXT    NOT NULL,
    request_id         TEXT    NOT NULL,
    alert_key          TEXT    NOT NULL,
    event_status       TEXT    NOT NULL,
    title              TEXT    NOT NULL,
    event_time         BIGINT  NOT NULL,
    received_at        BIGINT  NOT NULL,
    outcome            TEXT    NOT NULL,
    mark               TEXT    NOT NULL,
    rule_id            TEXT    NOT NULL,
    rule_name          TEXT    NOT NULL,
    source_incident_id TEXT    NOT NULL,
    event_id           TEXT    NOT NULL,
    alert_id           TEXT    NOT NULL,
    incident_id        TEXT    NOT NULL,
    created_at         BIGINT  NOT NULL
);
CREATE INDEX event_outcomes_list ON event_outcomes (account_id, received_at, outcome_id);
CREATE INDEX event_outcomes_request ON event_outcomes (account_id, request_id);
