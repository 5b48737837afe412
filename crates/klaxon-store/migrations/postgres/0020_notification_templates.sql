-- Notification templates (response.md 1.16, §2.22). Keep in step with
-- ../sqlite/0020_notification_templates.sql.
--
-- `definition` holds klaxon_core::template::TemplateRecord as JSON (bodies per channel);
-- name and status are columns for the uniqueness rule and listing. The built-in default
-- template is not a row: it is immutable and lives in code.
CREATE TABLE notification_templates (
    template_id   TEXT    PRIMARY KEY,
    account_id    BIGINT  NOT NULL,
    template_name TEXT    NOT NULL,
    status        TEXT    NOT NULL,
    definition    TEXT    NOT NULL,
    created_at    BIGINT  NOT NULL,
    updated_at    BIGINT  NOT NULL
);
CREATE UNIQUE INDEX notification_templates_name ON notification_templates (account_id, template_name);
