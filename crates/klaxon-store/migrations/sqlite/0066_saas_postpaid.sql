-- SaaS mode: postpaid billing (service-agreement.md §8, SVC-120 … SVC-125; docs/saas.md
-- "Postpaid"). Keep in step with ../postgres/0066_saas_postpaid.sql.

-- SVC-120/125: the tenant's billing mode, and the instant postpaid took (or takes) effect —
-- the anchor of its monthly cycles (0 while prepaid).
ALTER TABLE saas_tenants ADD COLUMN billing_mode TEXT NOT NULL DEFAULT 'prepaid';
ALTER TABLE saas_tenants ADD COLUMN postpaid_from INTEGER NOT NULL DEFAULT 0;
