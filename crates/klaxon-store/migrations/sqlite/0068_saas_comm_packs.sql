-- SaaS mode: communication packs and the metered units decided at sending time
-- (service-agreement.md §5, SVC-070 … SVC-074; docs/saas.md "Communication quota").
-- Keep in step with ../postgres/0068_saas_comm_packs.sql.

-- SVC-072: a pack bought from the price list: `units` units of one type, usable until
-- `expires_at`; `price` is what its order cost (paid from the funds like any order).
CREATE TABLE saas_comm_packs (
    account_id INTEGER NOT NULL,
    pack_id    INTEGER NOT NULL,
    unit       TEXT    NOT NULL,
    units      INTEGER NOT NULL,
    price      TEXT    NOT NULL,
    price_list TEXT    NOT NULL,
    bought_at  INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    actor      TEXT    NOT NULL,
    PRIMARY KEY (account_id, pack_id)
);

-- SVC-072/074: where each metered notification row (`notifications.seq`) draws its unit
-- from, decided once before it is sent under the tenant's lock: `allowance`, `pack`
-- (`pack_id`), `overage` (funds reserved at `price`) or `skipped` (no allowance, pack or
-- funds: the row failed with `quota_exhausted`). A row the provider refused is removed,
-- so it never counts (SVC-070).
CREATE TABLE saas_comm_units (
    account_id INTEGER NOT NULL,
    seq        INTEGER NOT NULL,
    channel    TEXT    NOT NULL,
    source     TEXT    NOT NULL,
    pack_id    INTEGER NOT NULL DEFAULT 0,
    price      TEXT    NOT NULL DEFAULT '0',
    decided_at INTEGER NOT NULL,
    PRIMARY KEY (account_id, seq)
);
CREATE INDEX saas_comm_units_cycle ON saas_comm_units (account_id, channel, decided_at);
