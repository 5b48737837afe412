-- feature: iCalendar feed. The secret token of a schedule's calendar subscription URL
-- (`/calendar/schedule/<token>.ics`); empty = no feed. Rotating it retires the old URL.
ALTER TABLE schedules ADD COLUMN feed_token TEXT NOT NULL DEFAULT '';
CREATE INDEX schedules_feed_token ON schedules (feed_token);
