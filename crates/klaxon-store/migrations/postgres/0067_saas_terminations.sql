-- SaaS mode: early terminations and cancellations (service-agreement.md §16, SVC-230 …
-- SVC-238; docs/saas.md "Termination and refunds"). One row per termination recorded by
-- staff or asked for by the tenant: scheduled until its effective instant, then carried out
-- once (state, refunds, buffer, notices) by the node's worker or the CLI.
-- Keep in step with ../sqlite/0067_saas_terminations.sql.

CREATE TABLE saas_terminations (
    account_id     BIGINT NOT NULL,
    termination_id BIGINT NOT NULL,
    -- `mutual` (SVC-231), `breach` (SVC-232), `operator` (SVC-233), `feature_removal`
    -- (SVC-238) or `cancel` (SVC-235: the tenant releases the service, SVC-186).
    kind           TEXT    NOT NULL,
    -- `scheduled`, `done` (carried out) or `void` (the tenant was no longer in force).
    state          TEXT    NOT NULL,
    effective_at   BIGINT NOT NULL,
    -- Agreement, change record or request reference; breach category; evidence list.
    reference      TEXT    NOT NULL DEFAULT '',
    category       TEXT    NOT NULL DEFAULT '',
    evidence       TEXT    NOT NULL DEFAULT '',
    proposer       TEXT    NOT NULL DEFAULT '',
    approver       TEXT    NOT NULL DEFAULT '',
    -- SVC-231: the agreed cash refund as a decimal ('' = none agreed).
    agreed_refund  TEXT    NOT NULL DEFAULT '',
    -- SVC-186: a release deletes after the undo window (1) or keeps the normal buffer (0).
    delete_early   BIGINT NOT NULL DEFAULT 0,
    created_at     BIGINT NOT NULL,
    actor          TEXT    NOT NULL,
    done_at        BIGINT NOT NULL DEFAULT 0,
    -- What was done: the state change, each refund, the purge date.
    outcome        TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (account_id, termination_id)
);
CREATE INDEX saas_terminations_due ON saas_terminations (state, effective_at);
