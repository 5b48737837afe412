-- Tenant notices waiting to be given (service-agreement.md §20, SVC-310…316; docs/saas.md
-- "Notices"). A change that needs a notice (an access grant made, revoked or expired, SVC-221)
-- writes its row here in the same transaction as the change, so a notice is never lost to a
-- crash; a SaaS node then sends it on the category's channels and replaces the row with the
-- immutable notice records (saas_notices). `next_at` is a claim: a node moves it forward
-- before sending, so two nodes do not send one notice twice.
-- Keep in step with ../sqlite/0063_saas_notice_outbox.sql.

CREATE TABLE saas_notice_outbox (
    outbox_id   BIGSERIAL PRIMARY KEY,
    account_id  BIGINT NOT NULL,
    category    TEXT    NOT NULL,
    template_id TEXT    NOT NULL,
    subject     TEXT    NOT NULL,
    content     TEXT    NOT NULL,
    -- The object the notice is about, e.g. `access_grant:5`.
    related     TEXT    NOT NULL,
    created_at  BIGINT NOT NULL,
    next_at     BIGINT NOT NULL,
    attempts    BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX saas_notice_outbox_due ON saas_notice_outbox (next_at);
