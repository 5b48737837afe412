-- Deleting incidents: bulk deletion by time range (service-agreement.md SVC-183) and the
-- incident retention sweep (docs/data-retention.md). Keep in step with
-- ../postgres/0027_incident_retention.sql.
--
-- `incident_retention_days`: closed incidents whose close time is older than this many days
-- are deleted with everything that belongs to them; 0 = kept forever (the default).
ALTER TABLE accounts ADD COLUMN incident_retention_days BIGINT NOT NULL DEFAULT 0;

-- The sweep's look-up: an account's closed incidents, oldest close first.
CREATE INDEX incidents_closed ON incidents (account_id, close_time) WHERE progress = 'Closed';
-- Alerts that never joined an incident (silenced, inhibited): bulk deletion finds them by
-- start time, the sweep among them those that closed or recovered before the cutoff.
CREATE INDEX alerts_unattached ON alerts (account_id, start_time) WHERE incident_id = '';

-- Deleting an incident removes its rows from every table; these make each of those
-- deletions an index look-up instead of a scan of the account's history.
CREATE INDEX event_outcomes_incident ON event_outcomes (account_id, incident_id);
CREATE INDEX event_outcomes_alert ON event_outcomes (account_id, alert_id);
CREATE INDEX event_outcomes_source ON event_outcomes (account_id, source_incident_id)
    WHERE source_incident_id <> '';
CREATE INDEX webhook_deliveries_of_subject ON webhook_deliveries (account_id, subject_id);
CREATE INDEX webhook_attempts_of_subject ON webhook_attempts (account_id, ref_id);
