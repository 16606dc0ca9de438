ALTER TABLE tenants DROP COLUMN IF EXISTS auto_join_role;
ALTER TABLE users DROP COLUMN IF EXISTS phone_verified;
ALTER TABLE users DROP COLUMN IF EXISTS phone;
DROP TABLE IF EXISTS tenant_members;
DROP TABLE IF EXISTS one_time_codes;
DROP TABLE IF EXISTS outbox_messages;
