DROP INDEX IF EXISTS oauth_providers_tenant;
ALTER TABLE oauth_providers DROP COLUMN protocol;
ALTER TABLE oauth_providers DROP COLUMN enforce;
ALTER TABLE oauth_providers DROP COLUMN tenant_id;
ALTER TABLE identities DROP COLUMN issuer;
