-- What a notification's template needs beyond the incident (response.md 1.17, RSP-343,
-- RSP-346). Keep in step with ../sqlite/0026_notification_template_vars.sql.
--
-- `repeat_index`      0 for a level's first notification, i for its i-th loop repeat
--                     (RSP-343 `RepeatIndex`, RSP-355 `[Repeat i]`);
-- `template_fallback` 1 when the custom template failed to render at send time and the
--                     default template's body was sent instead (RSP-346).
ALTER TABLE notifications ADD COLUMN repeat_index BIGINT NOT NULL DEFAULT 0;
ALTER TABLE notifications ADD COLUMN template_fallback BIGINT NOT NULL DEFAULT 0;
