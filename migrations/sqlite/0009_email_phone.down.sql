ALTER TABLE tenants DROP COLUMN auto_join_role;
ALTER TABLE users DROP COLUMN phone_verified;
ALTER TABLE users DROP COLUMN phone;
DROP TABLE IF EXISTS tenant_members;
DROP TABLE IF EXISTS one_time_codes;
DROP TABLE IF EXISTS outbox_messages;
