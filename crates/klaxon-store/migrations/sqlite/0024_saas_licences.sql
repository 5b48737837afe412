-- SaaS mode: licence orders, who holds a licence, and each cycle's first licensed actions
-- (service-agreement.md §4 and §6; docs/saas.md "Licences"). Self-hosted installs never
-- write here. Keep in step with ../postgres/0024_saas_licences.sql.

-- SVC-082/084/101/061: prepaid licences bought from the balance. A `term` order starts a
-- prepaid term; an `add_on` order adds licences to the term in force and ends with it. The
-- pool at an instant is the sum of the orders in force then (SVC-051).
CREATE TABLE saas_licence_orders (
    account_id    INTEGER NOT NULL,
    order_id      INTEGER NOT NULL,
    kind          TEXT    NOT NULL,
    edition       TEXT    NOT NULL,
    quantity      INTEGER NOT NULL,
    months        INTEGER NOT NULL,
    unit_price    TEXT    NOT NULL,
    total         TEXT    NOT NULL,
    price_list    TEXT    NOT NULL,
    state         TEXT    NOT NULL,
    paid_at       INTEGER NOT NULL,
    starts_at     INTEGER NOT NULL,
    ends_at       INTEGER NOT NULL,
    actor         TEXT    NOT NULL,
    PRIMARY KEY (account_id, order_id)
);

-- SVC-054/055: one row per licence a member held, fixed or temporary. Rows are history:
-- freeing a licence sets released_at and never deletes the row, so the active users of a
-- past cycle (SVC-053) can still be counted. A holding is current while
-- held_from <= now < held_until and released_at = 0.
CREATE TABLE saas_licence_holdings (
    holding_id   INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id   INTEGER NOT NULL,
    member_id    INTEGER NOT NULL,
    kind         TEXT    NOT NULL,
    held_from    INTEGER NOT NULL,
    held_until   INTEGER NOT NULL,
    released_at  INTEGER NOT NULL DEFAULT 0,
    assigned_by  TEXT    NOT NULL,
    released_by  TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX saas_licence_holdings_member ON saas_licence_holdings (account_id, member_id);

-- SVC-053: the first licensed action of each member in each licence cycle.
CREATE TABLE saas_licence_actions (
    account_id       INTEGER NOT NULL,
    cycle_start      INTEGER NOT NULL,
    member_id        INTEGER NOT NULL,
    first_action_at  INTEGER NOT NULL,
    PRIMARY KEY (account_id, cycle_start, member_id)
);
