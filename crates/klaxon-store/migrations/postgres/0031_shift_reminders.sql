-- Shift reminders (response.md RSP-230…RSP-233): how far each schedule's reminders have been
-- swept. The sweep covers [swept_to, now) and moves it forward in the same transaction as
-- the outbox rows it writes; the rows' `rid` is derived from the reminder, so two nodes that
-- sweep the same window write each reminder once.
CREATE TABLE schedule_reminder_runs (
    account_id  BIGINT NOT NULL,
    schedule_id BIGINT NOT NULL,
    swept_to    BIGINT NOT NULL,
    PRIMARY KEY (account_id, schedule_id)
);
