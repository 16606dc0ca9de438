ALTER TABLE sessions DROP COLUMN tenant_id;
