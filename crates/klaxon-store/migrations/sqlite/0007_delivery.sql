-- Delivery of the notification outbox (response.md 1.17, RSP-290, RSP-291): each row is sent
-- at least once by a delivery worker, under a lease like the timers'. Keep in step with
-- ../postgres/0007_delivery.sql.
--
-- `attempts`        send attempts made so far;
-- `next_attempt_at` the earliest instant the next attempt may start (0 = at once); a row in
--                   back-off after a transient provider error waits here, as a row;
-- `claimed_by`, `claim_until` the node sending it now, and until when its claim holds; a node
--                   that dies mid-send loses the claim and another node sends the row again
--                   (at least once; the `rid` is the idempotency key the providers see);
-- `provider_message_id` the provider's id of the sent message, when it reports one.
ALTER TABLE notifications ADD COLUMN attempts BIGINT NOT NULL DEFAULT 0;
ALTER TABLE notifications ADD COLUMN next_attempt_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE notifications ADD COLUMN claimed_by TEXT NOT NULL DEFAULT '';
ALTER TABLE notifications ADD COLUMN claim_until BIGINT NOT NULL DEFAULT 0;
ALTER TABLE notifications ADD COLUMN provider_message_id TEXT NOT NULL DEFAULT '';
CREATE INDEX notifications_due ON notifications (status, next_attempt_at, seq);
