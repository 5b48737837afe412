-- SaaS mode: renewals and the tenant's billing settings (service-agreement.md §6–§8;
-- docs/saas.md "Renewals"). Keep in step with ../postgres/0065_saas_renewals.sql.

-- SVC-101/103: a renewal keeps the anchor of the term it continues, so each term order
-- records its anchor date (YYYY-MM-DD; '' = its own start date, a first term) and how many
-- months after the anchor it starts. A `renewal` order is a term of its own.
ALTER TABLE saas_licence_orders ADD COLUMN anchor TEXT NOT NULL DEFAULT '';
ALTER TABLE saas_licence_orders ADD COLUMN offset_months INTEGER NOT NULL DEFAULT 0;

-- SVC-104: opt-in auto-renew (0 = off).
ALTER TABLE saas_tenants ADD COLUMN auto_renew INTEGER NOT NULL DEFAULT 0;
-- SVC-087: the balance-alert threshold as a decimal ('' = none), and whether the alert may
-- fire (it fires once until the funds rise above the threshold again).
ALTER TABLE saas_tenants ADD COLUMN balance_alert TEXT NOT NULL DEFAULT '';
ALTER TABLE saas_tenants ADD COLUMN balance_alert_armed INTEGER NOT NULL DEFAULT 1;
