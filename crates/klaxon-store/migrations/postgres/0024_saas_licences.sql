-- SaaS mode: licence orders, who holds a licence, and each cycle's first licensed actions
-- (service-agreement.md §4 and §6; docs/saas.md "Licences"). Self-hosted installs never
-- write here. Keep in step with ../sqlite/0024_saas_licences.sql.

-- SVC-082/084/101/061: prepaid licences bought from the balance. A `term` order starts a
-- prepaid term; an `add_on` order adds licences to the term in force and ends with it. The
-- pool at an instant is the sum of the orders in force then (SVC-051).
CREATE TABLE saas_licence_orders (
    account_id    BIGINT  NOT NULL,
    order_id      BIGINT  NOT NULL,
    kind          TEXT    NOT NULL,             -- term | add_on
    edition       TEXT    NOT NULL,             -- standard | pro
    quantity      BIGINT  NOT NULL,
    months        BIGINT  NOT NULL,             -- 1 or 12 (the term's length)
    unit_price    NUMERIC NOT NULL,             -- price-list unit price for the term length
    total         NUMERIC NOT NULL,             -- what was paid (SVC-061 pro rata for add-ons)
    price_list    TEXT    NOT NULL,
    state         TEXT    NOT NULL,             -- fulfilled (paid from the balance at once)
    paid_at       BIGINT  NOT NULL,             -- ms: the payment instant (SVC-084)
    starts_at     BIGINT  NOT NULL,             -- ms
    ends_at       BIGINT  NOT NULL,             -- ms: the term's ends_at (SVC-101)
    actor         TEXT    NOT NULL,
    PRIMARY KEY (account_id, order_id)
);

-- SVC-054/055: one row per licence a member held, fixed or temporary. Rows are history:
-- freeing a licence sets released_at and never deletes the row, so the active users of a
-- past cycle (SVC-053) can still be counted. A holding is current while
-- held_from <= now < held_until and released_at = 0.
CREATE TABLE saas_licence_holdings (
    holding_id   BIGSERIAL PRIMARY KEY,
    account_id   BIGINT  NOT NULL,
    member_id    BIGINT  NOT NULL,
    kind         TEXT    NOT NULL,              -- fixed | temporary
    held_from    BIGINT  NOT NULL,              -- ms
    held_until   BIGINT  NOT NULL,              -- ms: cycle end (temporary), term end (fixed)
    released_at  BIGINT  NOT NULL DEFAULT 0,    -- ms; 0 = not released
    assigned_by  TEXT    NOT NULL,
    released_by  TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX saas_licence_holdings_member ON saas_licence_holdings (account_id, member_id);

-- SVC-053: the first licensed action of each member in each licence cycle.
CREATE TABLE saas_licence_actions (
    account_id       BIGINT NOT NULL,
    cycle_start      BIGINT NOT NULL,           -- ms
    member_id        BIGINT NOT NULL,
    first_action_at  BIGINT NOT NULL,           -- ms
    PRIMARY KEY (account_id, cycle_start, member_id)
);
