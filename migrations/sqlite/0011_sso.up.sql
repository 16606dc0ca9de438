-- OAuth, continued: the issuer that vouched for each linked identity (a
-- subject is unique only within its issuer), and enterprise SSO
-- connections per tenant, kept beside the project's providers (provider
-- `sso:<tenant_id>`): the tenant, whether password and email sign-in are
-- refused for its verified domains, and the protocol (`oidc`; SAML later).

ALTER TABLE identities ADD COLUMN issuer TEXT;
ALTER TABLE oauth_providers ADD COLUMN tenant_id TEXT;
ALTER TABLE oauth_providers ADD COLUMN enforce BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE oauth_providers ADD COLUMN protocol TEXT NOT NULL DEFAULT 'oidc';
CREATE INDEX oauth_providers_tenant ON oauth_providers (project_id, tenant_id);
